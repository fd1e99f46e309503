"""Speech recognition (ASR): a wav2vec2-BERT (conformer) CTC model with a character vocabulary.

Embedded default: short "utterances" in a toy language whose letters are voiced as tone pairs
(like vowel formants), with random pitch, timing and noise, synthesized deterministically with
their transcripts; the character vocabulary is built from those transcripts and a small CTC model
from a config, so nothing is downloaded. Setting `model.pretrained` (e.g. `facebook/w2v-bert-2.0`
or `facebook/wav2vec2-base`, or a local checkpoint folder) loads that model and feature extractor
with the vocabulary of your transcripts, and `data.source` points at a folder of audio files with
a `metadata.csv` (`file_name,transcription`), or `hf:<dataset>`.
"""

from __future__ import annotations

import csv
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
from pydantic import Field

from ...core.schema import DataSource, Judging, Section
from ...serving import inputs
from .. import audio, toy_speech
from ..contract import (
    files_of,
    forward_pass,
    labels_as_they_are,
    no_router,
    nothing_skipped,
    predictions_as_they_are,
)

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
# Drift monitoring: what it reads of an input, of a transcript and of a true transcript.
input_features = audio.input_features
prepare_labels = labels_as_they_are
# `predict` prints its predictions as they are (no files to write).
PREDICTIONS_OUT = None
write_predictions = predictions_as_they_are
ACCEPTED_INPUT = audio.ACCEPTED_FILES
TARGET: Final = "transcript"
WHY_NO_ONNX = None  # `export` writes its ONNX graph
EXPORT_FORMAT: Final = "onnx"
REQUIREMENTS = ("soundfile", "jiwer")
REPORT_FILES = ("transcripts.csv",)
PAD, UNK, WORD_DELIMITER = "[PAD]", "[UNK]", "|"
# No classical transcriber is both cheap and honest, so the baselines are constant transcripts
# (docs/decisions.md). The error rates sit at 1.0 while CTC learns to leave its all-blank start;
# the loss falls throughout, so it picks the best epoch and decides when to stop.
JUDGING = Judging(
    primary_metric="cer",
    greater_is_better=False,
    selection_metric="loss",
    baselines={
        "empty": "an empty transcript for every clip",
        "most_frequent": "the training split's most frequent transcript for every clip",
    },
    baseline_to_beat="most_frequent",
    improvement_hint="model.pretrained (e.g. facebook/w2v-bert-2.0), more utterances, or a "
    "longer train.epochs budget",
)


class DataParams(DataSource):
    utterances: int = Field(ge=20)


class ModelParams(Section):
    # A Hugging Face checkpoint id or a local folder; null builds the tiny model below from scratch.
    pretrained: str | None
    num_mel_bins: int = Field(ge=8)
    hidden_size: int = Field(ge=8)
    num_layers: int = Field(ge=1)
    num_heads: int = Field(ge=1)
    intermediate_size: int = Field(ge=8)
    dropout: float = Field(ge=0, lt=1)


def embedded_dataset(params: Any):
    """Synthesized utterances with transcripts, the same for the same seed."""
    from datasets import Dataset, Features, Sequence, Value

    waves, texts = toy_speech.utterances(params.seed, params.data.utterances)
    features = Features({"input": Sequence(Value("float32")), "label": Value("string")})
    return Dataset.from_dict({"input": waves, "label": texts}, features=features)


def load_source(source: Path, params: Any):
    """A folder of audio files with `metadata.csv` naming each file and its transcription."""
    from datasets import Dataset, Features, Sequence, Value

    waves, texts = audio.read_transcribed_folder(source, params.data.target_column)
    audio_column, text_column = params.data.input_column, params.data.target_column
    features = Features({audio_column: Sequence(Value("float32")), text_column: Value("string")})
    return Dataset.from_dict({audio_column: waves, text_column: texts}, features=features)


def _tokenizer(transcripts: list[str]):
    from transformers import Wav2Vec2CTCTokenizer

    characters = sorted({char for text in transcripts for char in text} - {" "})
    vocab = {PAD: 0, UNK: 1, WORD_DELIMITER: 2} | {
        char: index for index, char in enumerate(characters, start=3)
    }
    with tempfile.TemporaryDirectory() as scratch:
        vocab_file = Path(scratch) / "vocab.json"
        vocab_file.write_text(json.dumps(vocab), encoding="utf-8")
        return Wav2Vec2CTCTokenizer(
            str(vocab_file), unk_token=UNK, pad_token=PAD, word_delimiter_token=WORD_DELIMITER
        )


@dataclass
class SpeechProcessor:
    """A feature extractor and a character tokenizer, saved to and loaded from one folder."""

    feature_extractor: Any
    tokenizer: Any

    def save_pretrained(self, folder: Path) -> None:
        self.feature_extractor.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)

    def batch_decode(self, ids: Any, **kwargs: Any) -> list[str]:
        return self.tokenizer.batch_decode(ids, **kwargs)


def build(params: Any, train: Any, labels: list[str]):
    """Processor (feature extractor + character tokenizer) and CTC model."""
    from transformers import (
        AutoFeatureExtractor,
        AutoModelForCTC,
        SeamlessM4TFeatureExtractor,
        Wav2Vec2BertConfig,
        Wav2Vec2BertForCTC,
    )

    tokenizer = _tokenizer(list(train["label"]))
    spec = params.model
    if spec.pretrained:
        extractor = AutoFeatureExtractor.from_pretrained(spec.pretrained)
        model = AutoModelForCTC.from_pretrained(
            spec.pretrained,
            vocab_size=len(tokenizer),
            pad_token_id=tokenizer.pad_token_id,
            ctc_loss_reduction="mean",
            ignore_mismatched_sizes=True,
        )
        return SpeechProcessor(extractor, tokenizer), model
    # 80 log-mel filter banks every 10 ms, two frames stacked: 50 frames a second, ~5 a letter.
    extractor = SeamlessM4TFeatureExtractor(
        feature_size=spec.num_mel_bins,
        num_mel_bins=spec.num_mel_bins,
        sampling_rate=audio.SAMPLING_RATE,
        stride=2,
    )
    config = Wav2Vec2BertConfig(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        feature_projection_input_dim=spec.num_mel_bins * 2,
        hidden_size=spec.hidden_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        intermediate_size=spec.intermediate_size,
        conv_depthwise_kernel_size=15,
        hidden_dropout=spec.dropout,
        attention_dropout=spec.dropout,
        activation_dropout=spec.dropout,
        feat_proj_dropout=spec.dropout,
        final_dropout=spec.dropout,
        layerdrop=0.0,
        mask_time_prob=0.0,
        add_adapter=False,
        ctc_loss_reduction="mean",
        ctc_zero_infinity=True,
    )
    return SpeechProcessor(extractor, tokenizer), Wav2Vec2BertForCTC(config)


def load(model_dir: Path):
    from transformers import AutoFeatureExtractor, AutoModelForCTC, AutoTokenizer

    processor = SpeechProcessor(
        AutoFeatureExtractor.from_pretrained(model_dir), AutoTokenizer.from_pretrained(model_dir)
    )
    return processor, AutoModelForCTC.from_pretrained(model_dir)


def preprocess(processor: Any, inputs: list[Any]) -> dict[str, Any]:
    """Waveforms to model inputs: the one function training, `predict` and `serve` all use."""
    waveforms = [_long_enough(np.asarray(waveform, dtype=np.float32)) for waveform in inputs]
    return processor.feature_extractor(waveforms, sampling_rate=audio.SAMPLING_RATE)


# The shortest clip the feature extractor reads (0.1 s: a few of its 25 ms frames); a shorter
# one, which it fails on, is padded with silence.
SHORTEST_SAMPLES = audio.SAMPLING_RATE // 10


def _long_enough(waveform: np.ndarray) -> np.ndarray:
    waveform = np.atleast_1d(waveform)
    return np.pad(waveform, (0, max(0, SHORTEST_SAMPLES - len(waveform))))


def augmentation(params: Any) -> Callable[[Any], Any] | None:
    """Utterances are trained on as they are: no altered copies."""
    return None


def training_features(processor: Any):
    def transform(batch: dict[str, list]) -> dict[str, Any]:
        labels = processor.tokenizer(batch["label"]).input_ids
        return {**preprocess(processor, batch["input"]), "labels": labels}

    return transform


@dataclass
class CTCCollator:
    """Pads waveforms with the feature extractor and transcripts with -100 (ignored by the loss)."""

    processor: Any

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        inputs = [{key: row[key] for key in row if key != "labels"} for row in rows]
        batch = self.processor.feature_extractor.pad(inputs, padding=True, return_tensors="pt")
        if "labels" in rows[0]:
            labels = self.processor.tokenizer.pad(
                [{"input_ids": row["labels"]} for row in rows], padding=True, return_tensors="pt"
            )
            batch["labels"] = labels["input_ids"].masked_fill(labels["attention_mask"].ne(1), -100)
        return batch


def collator(processor: Any) -> CTCCollator:
    return CTCCollator(processor)


def _transcripts(processor: Any, prediction: Any) -> tuple[list[str], list[str]]:
    predicted_ids = np.asarray(prediction.predictions).argmax(-1)
    label_ids = np.asarray(prediction.label_ids)
    label_ids = np.where(label_ids == -100, processor.tokenizer.pad_token_id, label_ids)
    hypotheses = processor.batch_decode(predicted_ids)
    references = processor.batch_decode(label_ids, group_tokens=False)
    return references, hypotheses


def error_rates(references: list[str], hypotheses: list[str]) -> dict[str, float]:
    """Word and character error rates (jiwer: no download needed), for models and baselines."""
    import jiwer

    return {
        "wer": float(jiwer.wer(references, hypotheses)),
        "cer": float(jiwer.cer(references, hypotheses)),
    }


def compute_metrics(processor: Any):
    def metrics(prediction: Any) -> dict[str, float]:
        return error_rates(*_transcripts(processor, prediction))

    return metrics


def baselines(train: Any, test: Any, params: Any) -> dict[str, dict[str, float]]:
    """Constant transcripts, scored against the test split's references."""
    from collections import Counter

    references = list(test["label"])
    most_frequent = Counter(train["label"]).most_common(1)[0][0]
    return {
        "empty": error_rates(references, [""] * len(references)),
        "most_frequent": error_rates(references, [most_frequent] * len(references)),
    }


def postprocess(processor: Any, model: Any, outputs: Any) -> list[dict[str, Any]]:
    return [{"text": text} for text in processor.batch_decode(outputs.logits.argmax(-1))]


def report(
    processor: Any, model: Any, prediction: Any, test: Any, plots_dir: Path
) -> dict[str, float]:
    """Test-split WER and CER, plus `transcripts.csv` (reference and hypothesis side by side)."""
    references, hypotheses = _transcripts(processor, prediction)
    plots_dir.mkdir(parents=True, exist_ok=True)
    with (plots_dir / "transcripts.csv").open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(["reference", "hypothesis"])
        writer.writerows(zip(references, hypotheses, strict=True))
    return compute_metrics(processor)(prediction)


def write_examples(dataset: Any, out_dir: Path) -> list[Path]:
    """A few WAV files from the test split, for `make predict` and `curl`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, row in enumerate(dataset.select(range(min(3, len(dataset))))):
        path = out_dir / f"utterance_{index}_{row['label'].replace(' ', '_')}.wav"
        path.write_bytes(audio.encode_wav(row["input"]))
        paths.append(path)
    return paths


def agreement(champion: dict[str, Any], candidate: dict[str, Any]) -> float:
    """Shadow replay: 1 - the CER of the candidate's transcript against the champion's (0 at
    worst); two empty transcripts agree."""
    import jiwer

    if not champion["text"]:
        return float(not candidate["text"])
    return max(0.0, 1.0 - float(jiwer.cer(champion["text"], candidate["text"])))


def output_features(prediction: dict[str, Any]) -> dict[str, Any]:
    return {"transcript_chars": float(len(prediction["text"]))}


def target_features(split: Any) -> Any:
    return lambda label: {"transcript_chars": float(len(label))}
