"""Speech recognition: the task module (`task.py`) and its bake-time defaults (`_bake/`)."""
