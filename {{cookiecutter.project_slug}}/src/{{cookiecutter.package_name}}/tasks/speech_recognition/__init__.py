"""Speech recognition: its task module (the toy language is `tasks/toy_speech.py`)."""
