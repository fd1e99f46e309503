"""The embedded speech of the speech-recognition and text-to-speech tasks: a toy language.

Its letters are voiced as tone pairs (like the formants of vowels), with random pitch, timing and
noise, synthesized deterministically with their transcripts. Speech recognition hears it, text to
speech learns to say it, and a recognizer trained on it judges how intelligible a synthesizer is.
"""

from __future__ import annotations

import numpy as np

from .audio import SAMPLING_RATE

# Each letter of the toy language sounds as two tones (Hz), like the formants of a vowel.
LETTER_TONES = {
    "a": (350, 1100),
    "e": (450, 1900),
    "i": (300, 2400),
    "o": (500, 900),
    "k": (700, 1500),
    "l": (600, 2100),
    "m": (250, 1300),
    "s": (800, 2600),
}


def letter(name: str, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(rng.uniform(0.08, 0.12) * SAMPLING_RATE)) / SAMPLING_RATE
    low, high = (tone * rng.uniform(0.97, 1.03) for tone in LETTER_TONES[name])
    envelope = np.sin(np.pi * t / t[-1])
    return envelope * (np.sin(2 * np.pi * low * t) + 0.6 * np.sin(2 * np.pi * high * t)) / 1.6


def word(rng: np.random.Generator) -> str:
    letters = list(LETTER_TONES)
    chosen = [str(rng.choice(letters))]
    while len(chosen) < rng.integers(2, 5):
        # No doubled letters: a CTC model needs a blank between two equal frames.
        chosen.append(str(rng.choice([other for other in letters if other != chosen[-1]])))
    return "".join(chosen)


def utterance(rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """One to three words: the waveform (16 kHz) and its transcript."""
    rate = SAMPLING_RATE
    words = [word(rng) for _ in range(rng.integers(1, 4))]
    pieces = [np.zeros(int(rng.uniform(0.02, 0.08) * rate))]
    for spoken in words:
        for name in spoken:
            pieces += [letter(name, rng), np.zeros(int(rng.uniform(0.0, 0.02) * rate))]
        pieces.append(np.zeros(int(rng.uniform(0.08, 0.12) * rate)))
    wave = rng.uniform(0.4, 0.8) * np.concatenate(pieces)
    wave += rng.normal(0.0, rng.uniform(0.003, 0.02), wave.size)
    return wave.astype(np.float32), " ".join(words)


def utterances(seed: int, count: int) -> tuple[list[np.ndarray], list[str]]:
    """`count` utterances, the same for the same seed."""
    rng = np.random.default_rng(seed)
    pairs = [utterance(rng) for _ in range(count)]
    return [wave for wave, _ in pairs], [text for _, text in pairs]
