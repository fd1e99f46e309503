"""Audio in and out, shared by the speech tasks: decode any soundfile format to 16 kHz mono."""

from __future__ import annotations

import io
import struct
from math import gcd
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import FlywheelError

SAMPLING_RATE = 16_000
ACCEPTED_FILES = "a WAV, FLAC or OGG audio file"
# The same, as the media types /predict's schema states.
MEDIA_TYPES = ("audio/wav", "audio/flac", "audio/ogg")


def to_mono_16k(samples: np.ndarray, rate: int) -> np.ndarray:
    if samples.ndim > 1:
        samples = samples.mean(axis=1)
    if rate != SAMPLING_RATE:
        from scipy.signal import resample_poly

        divisor = gcd(rate, SAMPLING_RATE)
        samples = resample_poly(samples, SAMPLING_RATE // divisor, rate // divisor)
    return np.asarray(samples, dtype=np.float32)


def decode(raw: Any, name: str = "input") -> np.ndarray:
    """File bytes (WAV, FLAC, OGG, ...) or an already decoded waveform, as 16 kHz mono float32.

    `name` (the field or the file) starts the one-line error an undecodable file raises."""
    import soundfile

    if not isinstance(raw, bytes | bytearray):
        return np.asarray(raw, dtype=np.float32)
    problem = _truncated_wav(raw)
    if problem is None:
        try:
            samples, rate = soundfile.read(io.BytesIO(raw), dtype="float32")
        except (soundfile.LibsndfileError, RuntimeError, TypeError) as error:
            # libsndfile names the in-memory buffer: keep only its reason.
            problem = getattr(error, "error_string", None) or str(error).split(": ")[-1]
        else:
            if samples.size == 0:
                problem = "it holds no samples"
    if problem is not None:
        raise FlywheelError(
            f"{name}: the file cannot be decoded as audio ({problem}): "
            f"send or store {ACCEPTED_FILES}"
        )
    return to_mono_16k(samples, rate)


def _truncated_wav(raw: bytes | bytearray) -> str | None:
    """Why a RIFF/WAVE file is cut short, or None. libsndfile reads such a file without
    complaint, returning fewer samples than its header promises."""
    if len(raw) < 12 or raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        return None
    offset = 12
    while offset + 8 <= len(raw):
        chunk, size = raw[offset : offset + 4], struct.unpack("<I", raw[offset + 4 : offset + 8])[0]
        if chunk == b"data":
            held = len(raw) - offset - 8
            # Streaming writers leave a huge placeholder size (0xFFFFFFFF, 0x7FFFFFFF, ...).
            if size < 0x7FFF0000 and held < size:
                return f"truncated: its header promises {size} bytes of samples, it holds {held}"
            return None
        offset += 8 + size + (size % 2)
    return "truncated: no sample data after the header"


def log_mel_statistics(waveforms: list[Any], bins: int = 40) -> np.ndarray:
    """Per clip, the mean and standard deviation of each log-mel band over time (25 ms frames
    every 10 ms): the classical baseline's features, blind to when a sound happens."""
    from transformers.audio_utils import mel_filter_bank, spectrogram, window_function

    frame = 400
    filters = mel_filter_bank(
        num_frequency_bins=frame // 2 + 1,
        num_mel_filters=bins,
        min_frequency=20.0,
        max_frequency=SAMPLING_RATE / 2,
        sampling_rate=SAMPLING_RATE,
    )
    rows = []
    for waveform in waveforms:
        samples = np.asarray(waveform, dtype=np.float32)
        samples = np.pad(samples, (0, max(0, frame - samples.size)))
        bands = spectrogram(
            samples,
            window_function(frame, "hann"),
            frame_length=frame,
            hop_length=160,
            power=2.0,
            mel_filters=filters,
            log_mel="log10",
            mel_floor=1e-10,
        )
        rows.append(np.concatenate([bands.mean(axis=1), bands.std(axis=1)]))
    return np.stack(rows)


def read_transcribed_folder(source: Path, text_column: str) -> tuple[list[np.ndarray], list[str]]:
    """Waveforms and lower-cased transcripts of a folder of audio files whose `metadata.csv`
    names each file (`file_name`) and its transcription (`text_column`): the layout of the Hub's
    audio folders, read by the speech tasks."""
    import csv

    metadata = source / "metadata.csv"
    if source.is_file():
        raise FlywheelError(
            f"data.source: {source} is a file: point it at the folder of clips and metadata.csv"
        )
    if not metadata.is_file():
        raise FlywheelError(
            f"data.source: {metadata} not found: list `file_name,{text_column}` for each clip"
        )
    with metadata.open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    if not rows or "file_name" not in rows[0] or text_column not in rows[0]:
        raise FlywheelError(
            f"data.source: {metadata} needs the columns file_name and {text_column}"
        )
    missing = [row["file_name"] for row in rows if not (source / row["file_name"]).is_file()]
    if missing:
        raise FlywheelError(
            f"data.source: {metadata} lists {missing[0]}, which is not in {source}: "
            "add the file or remove its row"
        )
    waves = [read_file(source / row["file_name"]) for row in rows]
    return waves, [row[text_column].lower() for row in rows]


def read_file(path: Path) -> np.ndarray:
    return decode(path.read_bytes(), name=f"data.source: {path}")


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


def extensions() -> set[str]:
    """File name endings of the formats soundfile reads (`.wav`, `.flac`, `.ogg`, ...)."""
    import soundfile

    return {f".{name.lower()}" for name in soundfile.available_formats()}


def hub_waveforms(dataset: Any, column: str) -> Any:
    """A Hub audio column as 16 kHz float waveforms, decoded with soundfile (datasets would
    need torchcodec and FFmpeg for its own decoding)."""
    from datasets import Audio, Sequence, Value

    dataset = dataset.cast_column(column, Audio(decode=False))
    features = dataset.features.copy()
    features[column] = Sequence(Value("float32"))

    def to_waveform(row: dict[str, Any]) -> dict[str, Any]:
        file = row[column]
        raw = file["bytes"] if file["bytes"] else Path(file["path"]).read_bytes()
        return {column: decode(raw)}

    return dataset.map(to_waveform, features=features)


def inputs_from_hub(dataset: Any, params: Any) -> Any:
    """The input column of a Hub audio dataset, decoded (`from_hub` of the audio-in tasks)."""
    return hub_waveforms(dataset, params.data.input_column)


def input_features(processor: Any) -> Any:
    """What drift monitoring reads of a decoded clip: its duration, loudness and log-mel
    statistics (the processor is not needed: the features are the signal's own)."""

    def features(decoded: Any) -> dict[str, float]:
        samples = np.asarray(decoded, dtype=np.float32)
        rms = float(np.sqrt(np.mean(np.square(samples)))) if samples.size else 0.0
        bands = log_mel_statistics([samples])[0]
        half = bands.size // 2
        return {
            "duration_s": samples.size / SAMPLING_RATE,
            "loudness_db": 20 * float(np.log10(rms + 1e-10)),
            "mel_mean": float(bands[:half].mean()),
            "mel_std": float(bands[half:].mean()),
        }

    return features
