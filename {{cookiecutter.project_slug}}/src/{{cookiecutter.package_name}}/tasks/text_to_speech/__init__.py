"""Text to speech: its task module, and its synthesis models."""
