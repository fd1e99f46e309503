"""Audio classification: its task module (the shared `tasks/audio.py` reads the sound)."""
