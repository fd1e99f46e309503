"""Speech audio classification: a small ResNet over a log-mel spectrogram.

Embedded default: half-second clips of six sound classes (low and high tones, rising and falling
chirps, noise bursts, double beeps) synthesized deterministically with random pitch, timing,
loudness and background noise; a 3-stage ResNet reads Whisper's log-mel features of each clip
(padded or cut to one second) as a one-channel picture, built from a config, so nothing is
downloaded. Convolutions learn from a few hundred clips where a transformer from scratch does
not (docs/decisions.md). Setting `model.pretrained` (e.g. `openai/whisper-tiny`, or a local
checkpoint folder) loads that feature extractor and model instead, and `data.source` points at a
folder with one sub-folder of audio files per class, or `hf:<dataset>`.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Final

import numpy as np
from pydantic import Field

from ...core.schema import DataSource, Section
from ...serving import inputs
from .. import audio, classification
from ..classification import label_config, with_labels
from ..contract import files_of, forward_pass, no_router, nothing_skipped, predictions_as_they_are

INPUT_KIND: Final = "audio"
INPUTS = inputs.Files(INPUT_KIND)
# One call of the model answers a batch; no endpoints beyond /predict; logits kept whole.
run_model = forward_pass
api_router = no_router
skipped_characters = nothing_skipped
input_schema = files_of(*audio.MEDIA_TYPES)
reduce_logits = None
# Uploads and files decode to 16 kHz mono waveforms; the MLflow input example is a WAV file.
decode_input = audio.decode
example_input = audio.example_wav
from_hub = audio.inputs_from_hub
# Drift monitoring: what it reads of an input, of a prediction and of a true label.
input_features = audio.input_features
output_features = classification.output_features
agreement = classification.agreement
prepare_labels = classification.prepare_labels
# `predict` prints its predictions as they are (no files to write).
PREDICTIONS_OUT = None
write_predictions = predictions_as_they_are
target_features = classification.target_features
ACCEPTED_INPUT = audio.ACCEPTED_FILES
TARGET: Final = "class"
WHY_NO_ONNX = None  # `export` writes its ONNX graph
EXPORT_FORMAT: Final = "onnx"
REQUIREMENTS = ("soundfile",)
REPORT_FILES = classification.REPORT_FILES
CLASSES = ("low_tone", "high_tone", "chirp_up", "chirp_down", "noise_burst", "double_beep")
JUDGING = classification.judging("logistic regression on the mean and spread of each log-mel band")

# The classifiers' shared metrics, outputs and report.
compute_metrics = classification.compute_metrics
postprocess = classification.postprocess
report = classification.report


class DataParams(DataSource):
    clips_per_class: int = Field(ge=10)
    clip_seconds: float = Field(gt=0.1, le=1.0)
    # Random time shifts, loudness and background noise on the training clips, new every epoch.
    augment: bool


class ModelParams(Section):
    # A Hugging Face checkpoint id or a local folder; null builds the tiny model below from scratch.
    pretrained: str | None
    num_mel_bins: int = Field(ge=8)
    # Channels and residual blocks of each ResNet stage (each stage after the first halves the
    # resolution in time and frequency).
    hidden_sizes: list[int] = Field(min_length=1)
    depths: list[int] = Field(min_length=1)


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

    files, classes = classification.class_folder_files(source, audio.extensions(), "audio")
    names = sorted(set(classes))
    features = Features(
        {
            params.data.input_column: Sequence(Value("float32")),
            params.data.target_column: ClassLabel(names=names),
        }
    )
    return Dataset.from_dict(
        {
            params.data.input_column: [audio.read_file(path) for path in files],
            params.data.target_column: [names.index(name) for name in classes],
        },
        features=features,
    )


def baselines(train: Any, test: Any, params: Any) -> dict[str, dict[str, float]]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    classical = make_pipeline(
        FunctionTransformer(audio.log_mel_statistics),
        StandardScaler(),
        LogisticRegression(C=1.0, max_iter=2000),
    )
    return classification.baselines(train, test, classical)


# One class per process: built on first use, so transformers loads only when needed.
@functools.cache
def _spectrogram_resnet():
    """A ResNet image classifier that reads log-mel features (`input_features`, as Whisper's
    feature extractor makes them) as a one-channel picture."""
    from transformers import ResNetForImageClassification

    # The name's suffix picks transformers' classification loss.
    class SpectrogramResNetForImageClassification(ResNetForImageClassification):
        main_input_name = "input_features"

        def forward(self, input_features: Any = None, labels: Any = None, **kwargs: Any):
            return super().forward(
                pixel_values=input_features.unsqueeze(1), labels=labels, **kwargs
            )

    return SpectrogramResNetForImageClassification


def build(params: Any, train: Any, labels: list[str]):
    """Feature extractor and model: from `model.pretrained`, or configured from scratch."""
    from transformers import AutoFeatureExtractor, WhisperFeatureExtractor

    spec = params.model
    if spec.pretrained:
        processor = AutoFeatureExtractor.from_pretrained(spec.pretrained)
        model = _model_class(spec.pretrained).from_pretrained(
            spec.pretrained,
            ignore_mismatched_sizes=True,
            **label_config(labels),
        )
        return processor, model
    # Whisper pads or cuts every clip to `chunk_length` seconds: 1 s gives 100 frames.
    processor = WhisperFeatureExtractor(
        feature_size=spec.num_mel_bins, sampling_rate=audio.SAMPLING_RATE, chunk_length=1
    )
    config = classification.resnet_config(spec, 1, labels)
    return processor, _spectrogram_resnet()(config)


def _model_class(checkpoint: str | Path) -> Any:
    """This project's spectrogram ResNet for its own checkpoints, else the hub's audio classes."""
    from transformers import AutoConfig, AutoModelForAudioClassification

    architectures = AutoConfig.from_pretrained(checkpoint).architectures or []
    if architectures == [_spectrogram_resnet().__name__]:
        return _spectrogram_resnet()
    return AutoModelForAudioClassification


def load(model_dir: Path):
    from transformers import AutoFeatureExtractor

    processor = AutoFeatureExtractor.from_pretrained(model_dir)
    return processor, _model_class(model_dir).from_pretrained(model_dir)


def preprocess(processor: Any, inputs: list[Any]) -> dict[str, Any]:
    """Waveforms to log-mel features: the one function training, `predict` and `serve` all use."""
    waveforms = [np.asarray(waveform, dtype=np.float32) for waveform in inputs]
    return processor(waveforms, sampling_rate=audio.SAMPLING_RATE)


def augmentation(params: Any):
    """A function that returns randomly altered copies of training clips (None: no changes).

    Drawn from a generator seeded with `seed`, so the same run makes the same copies."""
    if not params.data.augment:
        return None
    rng = np.random.default_rng(params.seed)

    def alter(waveform: Any) -> np.ndarray:
        samples = np.asarray(waveform, dtype=np.float32)
        shift = int(rng.integers(-samples.size // 10, samples.size // 10 + 1))
        samples = np.roll(samples, shift)
        if shift > 0:
            samples[:shift] = 0.0
        elif shift < 0:
            samples[shift:] = 0.0
        loudness = rng.uniform(0.7, 1.3)
        noise = rng.normal(0.0, rng.uniform(0.0, 0.01), samples.size)
        return (loudness * samples + noise).astype(np.float32)

    def alter_all(waveforms: list[Any]) -> list[np.ndarray]:
        return [alter(waveform) for waveform in waveforms]

    alter_all.generator = rng  # type: ignore[attr-defined]  # checkpointed with the run, so a resumed run alters the same way
    return alter_all


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
