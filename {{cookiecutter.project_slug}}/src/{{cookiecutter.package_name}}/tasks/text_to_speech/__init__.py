"""Text to speech: the task module, its synthesis models and its bake-time defaults (`_bake/`)."""
