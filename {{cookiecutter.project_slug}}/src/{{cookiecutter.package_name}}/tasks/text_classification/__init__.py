"""Text classification: its task module."""
