"""The one exception the command line turns into a one-line message instead of a traceback."""


class FlywheelError(Exception):
    """A problem the user can fix: the message names what is wrong and how to fix it."""
