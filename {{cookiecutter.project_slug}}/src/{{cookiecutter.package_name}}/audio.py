"""Audio in and out, shared by the speech tasks: decode any soundfile format to 16 kHz mono."""

from __future__ import annotations

import io
from math import gcd
from pathlib import Path
from typing import Any

import numpy as np

from .errors import FlywheelError

SAMPLING_RATE = 16_000


def to_mono_16k(samples: np.ndarray, rate: int) -> np.ndarray:
    if samples.ndim > 1:
        samples = samples.mean(axis=1)
    if rate != SAMPLING_RATE:
        from scipy.signal import resample_poly

        divisor = gcd(rate, SAMPLING_RATE)
        samples = resample_poly(samples, SAMPLING_RATE // divisor, rate // divisor)
    return np.asarray(samples, dtype=np.float32)


def decode(raw: Any) -> np.ndarray:
    """File bytes (WAV, FLAC, OGG, ...) or an already decoded waveform, as 16 kHz mono float32."""
    import soundfile

    if not isinstance(raw, bytes | bytearray):
        return np.asarray(raw, dtype=np.float32)
    try:
        samples, rate = soundfile.read(io.BytesIO(raw), dtype="float32")
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as error:
        raise FlywheelError(f"input: the file cannot be decoded as audio ({error})") from None
    if samples.size == 0:
        raise FlywheelError("input: the audio file holds no samples")
    return to_mono_16k(samples, rate)


def read_file(path: Path) -> np.ndarray:
    return decode(path.read_bytes())


def encode_wav(samples: Any) -> bytes:
    """32-bit float WAV: decoding it gives back exactly the same samples."""
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(
        buffer, np.asarray(samples, dtype=np.float32), SAMPLING_RATE, format="WAV", subtype="FLOAT"
    )
    return buffer.getvalue()


def example_wav(dataset: Any) -> bytes:
    """One raw input as a client would send it: the first clip of `dataset` as WAV bytes."""
    return encode_wav(dataset[0]["input"])


def audio_files(folder: Path) -> list[Path]:
    import soundfile

    extensions = {f".{name.lower()}" for name in soundfile.available_formats()}
    return sorted(path for path in folder.rglob("*") if path.suffix.lower() in extensions)
