"""The one exception the command line turns into a one-line message instead of a traceback."""


class FlywheelError(Exception):
    """A problem the user can fix: the message names what is wrong and how to fix it."""


def unreachable(field: str, value: str, error: OSError, fix: str) -> FlywheelError:
    """The one line for a Hub dataset or checkpoint that cannot be loaded (offline, a wrong id,
    a missing folder): the libraries' own first line says which, `fix` what to do."""
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return FlywheelError(f"{field}: {value} cannot be loaded ({reason.rstrip('.')}): {fix}")
