"""Speech audio classification: a Whisper-style encoder over log-mel features.

Embedded default: half-second clips of six sound classes (low and high tones, rising and falling
chirps, noise bursts, double beeps) synthesized deterministically with random pitch, timing,
loudness and background noise; a 2-layer encoder is built from a config, so nothing is
downloaded. Setting `model.pretrained` (e.g. `openai/whisper-tiny`, or a local checkpoint
folder) loads that feature extractor and model instead, and `data.source` points at a folder
with one sub-folder of audio files per class, or `hf:<dataset>`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from .. import audio
from ..classification import compute_metrics, label_config, postprocess, report, with_labels
from ..errors import FlywheelError
from ..schema import DataSource, Section

INPUT_KIND = "audio"
# Uploads and files decode to 16 kHz mono waveforms; the MLflow input example is a WAV file.
decode_input = audio.decode
example_input = audio.example_wav
TARGET = "class"
CLASSES = ("low_tone", "high_tone", "chirp_up", "chirp_down", "noise_burst", "double_beep")

__all__ = ["compute_metrics", "postprocess", "report"]


class DataParams(DataSource):
    clips_per_class: int = Field(ge=10)
    clip_seconds: float = Field(gt=0.1, le=1.0)


class ModelParams(Section):
    # A Hugging Face checkpoint id or a local folder; null builds the tiny model below from scratch.
    pretrained: str | None
    num_mel_bins: int = Field(ge=8)
    hidden_size: int = Field(ge=8)
    num_layers: int = Field(ge=1)
    num_heads: int = Field(ge=1)
    ffn_size: int = Field(ge=8)
    dropout: float = Field(ge=0, lt=1)


def _synthesize(kind: str, seconds: float, rng: np.random.Generator) -> np.ndarray:
    rate = audio.SAMPLING_RATE
    t = np.arange(int(seconds * rate)) / rate
    onset = rng.uniform(0.0, seconds * 0.3)
    length = rng.uniform(seconds * 0.4, seconds * 0.6)
    inside = (t >= onset) & (t < onset + length)
    envelope = np.where(inside, np.sin(np.pi * np.clip((t - onset) / length, 0, 1)), 0.0)
    local = t - onset
    if kind == "low_tone":
        wave = np.sin(2 * np.pi * rng.uniform(200, 400) * t)
    elif kind == "high_tone":
        wave = np.sin(2 * np.pi * rng.uniform(1200, 2000) * t)
    elif kind in ("chirp_up", "chirp_down"):
        low, high = rng.uniform(250, 450), rng.uniform(1500, 2200)
        start, end = (low, high) if kind == "chirp_up" else (high, low)
        wave = np.sin(2 * np.pi * (start * local + (end - start) / (2 * length) * local**2))
    elif kind == "noise_burst":
        wave = rng.normal(0.0, 0.5, t.size)
    else:  # double_beep
        frequency, beep = rng.uniform(700, 1000), length / 3
        envelope = np.where(
            ((local >= 0) & (local < beep)) | ((local >= 2 * beep) & (local < length)), 1.0, 0.0
        )
        wave = np.sin(2 * np.pi * frequency * t)
    noise = rng.normal(0.0, rng.uniform(0.005, 0.03), t.size)
    return (rng.uniform(0.3, 0.8) * envelope * wave + noise).astype(np.float32)


def embedded_dataset(params: Any):
    """Synthesized clips, the same for the same seed, as 16 kHz float waveforms."""
    from datasets import ClassLabel, Dataset, Features, Sequence, Value

    rng = np.random.default_rng(params.seed)
    inputs, labels = [], []
    for _ in range(params.data.clips_per_class):
        for index, kind in enumerate(CLASSES):
            inputs.append(_synthesize(kind, params.data.clip_seconds, rng))
            labels.append(index)
    features = Features(
        {"input": Sequence(Value("float32")), "label": ClassLabel(names=list(CLASSES))}
    )
    return Dataset.from_dict({"input": inputs, "label": labels}, features=features)


def load_source(source: Path, params: Any):
    """A folder of audio files with one sub-folder per class: `source/<class>/<file>`."""
    from datasets import ClassLabel, Dataset, Features, Sequence, Value

    files = audio.audio_files(source) if source.is_dir() else []
    if not files:
        raise FlywheelError(
            f"data.source: {source} holds no audio files: use one sub-folder of clips per class"
        )
    names = sorted({path.parent.name for path in files})
    features = Features(
        {
            params.data.input_column: Sequence(Value("float32")),
            params.data.target_column: ClassLabel(names=names),
        }
    )
    return Dataset.from_dict(
        {
            params.data.input_column: [audio.read_file(path) for path in files],
            params.data.target_column: [names.index(path.parent.name) for path in files],
        },
        features=features,
    )


def build(params: Any, train: Any, labels: list[str]):
    """Feature extractor and model: from `model.pretrained`, or configured from scratch."""
    from transformers import (
        AutoFeatureExtractor,
        AutoModelForAudioClassification,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForAudioClassification,
    )

    spec = params.model
    if spec.pretrained:
        processor = AutoFeatureExtractor.from_pretrained(spec.pretrained)
        model = AutoModelForAudioClassification.from_pretrained(
            spec.pretrained,
            ignore_mismatched_sizes=True,
            **label_config(labels),
        )
        return processor, model
    # Whisper pads every clip to `chunk_length` seconds: 1 s gives 100 frames of features.
    processor = WhisperFeatureExtractor(
        feature_size=spec.num_mel_bins, sampling_rate=audio.SAMPLING_RATE, chunk_length=1
    )
    config = WhisperConfig(
        num_mel_bins=spec.num_mel_bins,
        d_model=spec.hidden_size,
        encoder_layers=spec.num_layers,
        encoder_attention_heads=spec.num_heads,
        encoder_ffn_dim=spec.ffn_size,
        decoder_layers=1,
        decoder_attention_heads=spec.num_heads,
        decoder_ffn_dim=spec.ffn_size,
        max_source_positions=processor.nb_max_frames // 2,
        classifier_proj_size=spec.hidden_size,
        dropout=spec.dropout,
        **label_config(labels),
    )
    return processor, WhisperForAudioClassification(config)


def load(model_dir: Path):
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    processor = AutoFeatureExtractor.from_pretrained(model_dir)
    return processor, AutoModelForAudioClassification.from_pretrained(model_dir)


def preprocess(processor: Any, inputs: list[Any]) -> dict[str, Any]:
    """Waveforms to log-mel features: the one function training, `predict` and `serve` all use."""
    waveforms = [np.asarray(waveform, dtype=np.float32) for waveform in inputs]
    return processor(waveforms, sampling_rate=audio.SAMPLING_RATE)


def training_features(processor: Any):
    return with_labels(preprocess, processor)


def collator(processor: Any):
    from transformers import DefaultDataCollator

    return DefaultDataCollator()


def write_examples(dataset: Any, out_dir: Path) -> list[Path]:
    """One WAV file per class from the test split, for `make predict` and `curl`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    names = dataset.features["label"].names
    written: dict[int, Path] = {}
    for row in dataset:
        if row["label"] not in written:
            path = out_dir / f"{names[row['label']]}.wav"
            path.write_bytes(audio.encode_wav(row["input"]))
            written[row["label"]] = path
    return sorted(written.values())
