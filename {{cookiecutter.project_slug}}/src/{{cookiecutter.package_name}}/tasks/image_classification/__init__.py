"""Image classification: its task module."""
