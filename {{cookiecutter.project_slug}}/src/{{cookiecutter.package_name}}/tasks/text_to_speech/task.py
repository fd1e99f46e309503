"""Text to speech (TTS): text in, a 16 kHz waveform out, through a log-mel spectrogram.

Embedded default: the speech-recognition task's toy language read the other way (toy_speech.py):
utterances synthesized with their transcripts, a character vocabulary built from those, and a
small aligned model (synthesis.AlignedTTS) from a config; its spectrograms become audio through
Griffin-Lim, which needs no weights. Nothing is downloaded. Setting `model.pretrained` (e.g.
`microsoft/speecht5_tts`, or a checkpoint folder this project saved) loads SpeechT5 instead,
`model.vocoder` (e.g. `microsoft/speecht5_hifigan`) a neural vocoder and `model.speaker_embedding`
a speaker's x-vector (a .npy file), and `data.source` points at a folder of audio files with a
`metadata.csv` (`file_name,transcription`), the layout speech recognition reads, or `hf:<dataset>`.
"""

from __future__ import annotations

import base64
import csv
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
from pydantic import Field

from ...core.errors import FlywheelError, unreachable
from ...core.schema import DataSource, Judging, Section
from ...serving import inputs
from .. import audio, text_features, toy_speech
from ..contract import forward_pass, labels_as_they_are, no_router, text_schema

INPUT_KIND: Final = "text"
INPUTS = inputs.TEXTS
# `predict` writes the speech to files: what its --out-dir option says.
PREDICTIONS_OUT = "Where the synthesized speech is written."
# One call of the model answers a batch; no endpoints beyond /predict; logits kept whole.
run_model = forward_pass
api_router = no_router
reduce_logits = None
ACCEPTED_INPUT = "non-blank text"
TARGET: Final = "speech"
WHY_NO_ONNX = (
    "the number of frames it speaks comes from the durations it predicts, counted out in Python "
    "(SpeechT5 generates frame by frame until it decides to stop), so a traced graph would fix "
    "every answer at the length of the example it was traced with"
)
EXPORT_FORMAT: Final = None
REQUIREMENTS = ("soundfile", "sentencepiece")
REPORT_FILES = ("spectrograms.png", "synthesized/metadata.csv")
# Drift monitoring reads the text, and the duration of the speech.
input_features = text_features.input_features
prepare_labels = labels_as_they_are
# Every model here reads and writes SpeechT5's log10-mel frames (80 bands, a frame every 16 ms),
# so a SpeechT5 checkpoint, its HiFi-GAN vocoder and Griffin-Lim all agree.
# The longest text one input may hold: speech is synthesized a sentence or a paragraph at a time
# (SpeechT5 reads at most 450 tokens; the small model's audio grows with the text).
MAX_CHARACTERS = 400
PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
# The log10 magnitude of a band at -100 dB: the floor of the spectral distance.
SILENCE_LOG10 = -5.0
JUDGING = Judging(
    primary_metric="mcd",
    greater_is_better=False,
    selection_metric="mcd",
    baselines={
        "mean_frame": "the training split's average frame, as long as the text",
        "unit_concatenation": "each character's average frames in the training split (every "
        "utterance split evenly over its characters), concatenated",
    },
    baseline_to_beat="unit_concatenation",
    improvement_hint="model.pretrained (e.g. microsoft/speecht5_tts), more utterances, or a "
    "longer train.epochs budget",
)


class DataParams(DataSource):
    utterances: int = Field(ge=20)


class ModelParams(Section):
    # A SpeechT5 checkpoint id or a local folder; null builds the small aligned model below.
    pretrained: str | None
    # A HiFi-GAN checkpoint (e.g. microsoft/speecht5_hifigan); null: Griffin-Lim, no weights.
    vocoder: str | None
    # A speaker's x-vector (.npy, 512 values) for SpeechT5; null: zeros. The small model has
    # one voice and ignores it.
    speaker_embedding: str | None
    hidden_size: int = Field(ge=8)
    encoder_layers: int = Field(ge=1)
    decoder_layers: int = Field(ge=1)
    dropout: float = Field(ge=0, lt=1)
    alignment_warmup_steps: int = Field(ge=0)


def embedded_dataset(params: Any):
    """The toy language's utterances: the transcript is the input, the waveform the target."""
    from datasets import Dataset, Features, Sequence, Value

    waves, texts = toy_speech.utterances(params.seed, params.data.utterances)
    features = Features({"input": Value("string"), "label": Sequence(Value("float32"))})
    return Dataset.from_dict({"input": texts, "label": waves}, features=features)


def load_source(source: Path, params: Any):
    """A folder of audio files with `metadata.csv` naming each file and its transcription."""
    from datasets import Dataset, Features, Sequence, Value

    text_column, audio_column = params.data.input_column, params.data.target_column
    waves, texts = audio.read_transcribed_folder(source, text_column)
    features = Features({text_column: Value("string"), audio_column: Sequence(Value("float32"))})
    return Dataset.from_dict({text_column: texts, audio_column: waves}, features=features)


def from_hub(dataset: Any, params: Any) -> Any:
    """A Hub dataset's audio column (the target here), decoded."""
    return audio.hub_waveforms(dataset, params.data.target_column)


def _character_tokenizer(texts: list[str]):
    """One token per character of the training transcripts (lower-cased), between <s> and </s>,
    which stand for the silence before and after speech."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    # The characters as the tokenizer will see them: normalized the same way.
    characters = sorted({char for text in texts for char in normalizer.normalize_str(text)})
    vocab = {token: index for index, token in enumerate([PAD, UNK, BOS, EOS, *characters])}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tokenizer.decoder = decoders.Fuse()
    tokenizer.post_processor = TemplateProcessing(
        single=f"{BOS} $A {EOS}", special_tokens=[(BOS, vocab[BOS]), (EOS, vocab[EOS])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token=PAD, unk_token=UNK, bos_token=BOS, eos_token=EOS
    )


def log_mel(extractor: Any, waveform: Any) -> np.ndarray:
    """A waveform's log10-mel frames (frames x bands), made by SpeechT5's feature extractor."""
    features = extractor(
        audio_target=np.asarray(waveform, dtype=np.float32), sampling_rate=audio.SAMPLING_RATE
    )
    return np.asarray(features["input_values"][0], dtype=np.float32)


@dataclass
class SpeechProcessor:
    """Everything around the model, saved to and loaded from its folder: the tokenizer, the
    feature extractor (waveform to log-mel frames), the vocoder (None: Griffin-Lim) and the
    speaker embedding (SpeechT5 only)."""

    tokenizer: Any
    feature_extractor: Any
    vocoder: Any = None
    speaker_embedding: np.ndarray | None = None

    def save_pretrained(self, folder: Path) -> None:
        folder = Path(folder)
        self.tokenizer.save_pretrained(folder)
        self.feature_extractor.save_pretrained(folder)
        if self.vocoder is not None:
            self.vocoder.save_pretrained(folder / "vocoder")
        if self.speaker_embedding is not None:
            np.save(folder / "speaker_embedding.npy", self.speaker_embedding)

    def log_mel(self, waveform: Any) -> np.ndarray:
        return log_mel(self.feature_extractor, waveform)

    def waveform(self, log_mel: np.ndarray) -> np.ndarray:
        from .synthesis import griffin_lim

        if self.vocoder is None:
            return griffin_lim(log_mel, self.feature_extractor.mel_filters)
        import torch

        with torch.inference_mode():
            return self.vocoder(torch.as_tensor(log_mel)[None]).squeeze(0).numpy()


def _model_class(folder: str | Path) -> Any:
    """SpeechT5 for SpeechT5 checkpoints, else this project's aligned model."""
    from .synthesis import AlignedTTS, SpeechT5Synthesizer

    config = Path(folder) / "config.json"
    if not config.is_file():
        return SpeechT5Synthesizer  # a Hub id: SpeechT5 is the architecture supported
    model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type")
    if model_type == AlignedTTS.config_class.model_type:
        return AlignedTTS
    if model_type != "speecht5":
        raise FlywheelError(
            f"model.pretrained: {folder} holds a {model_type} model: use a SpeechT5 checkpoint "
            "(e.g. microsoft/speecht5_tts) or a model this project trained"
        )
    return SpeechT5Synthesizer


def _extras(
    folder: str | Path | None, vocoder: str | None, speaker_embedding: str | None, model: Any
):
    """The vocoder and speaker embedding named in params.yaml, else those saved in `folder`."""
    from transformers import SpeechT5HifiGan

    if folder is not None and vocoder is None and (Path(folder) / "vocoder").is_dir():
        vocoder = str(Path(folder) / "vocoder")
    saved_speaker = None if folder is None else Path(folder) / "speaker_embedding.npy"
    if speaker_embedding is None and saved_speaker is not None and saved_speaker.is_file():
        speaker_embedding = str(saved_speaker)
    speaker = None
    size = getattr(model.config, "speaker_embedding_dim", None)
    if size is not None:  # SpeechT5 conditions on a speaker
        speaker = np.zeros(size, dtype=np.float32)
        if speaker_embedding is not None:
            path = Path(speaker_embedding)
            if not path.is_file():
                raise FlywheelError(
                    f"model.speaker_embedding: {path} not found: point it at a .npy x-vector "
                    "or set it to null"
                )
            speaker = np.load(path).astype(np.float32).reshape(-1)
            if speaker.size != size:
                raise FlywheelError(
                    f"model.speaker_embedding: {path} holds {speaker.size} values, the model "
                    f"expects {size}: use an x-vector of that size"
                )
    if vocoder is None:
        return None, speaker
    try:
        return SpeechT5HifiGan.from_pretrained(vocoder), speaker
    except OSError as error:
        raise unreachable(
            "model.vocoder",
            vocoder,
            error,
            "check the checkpoint id or folder and the network, or set it to null for Griffin-Lim",
        ) from None


def build(params: Any, train: Any, labels: list[str]):
    """Processor and model: from `model.pretrained`, or a character tokenizer and the small
    aligned model from a config."""
    from transformers import AutoTokenizer, SpeechT5FeatureExtractor

    from .synthesis import AlignedTTS, AlignedTTSConfig

    spec = params.model
    if spec.pretrained:
        model = _model_class(spec.pretrained).from_pretrained(spec.pretrained)
        processor = SpeechProcessor(
            AutoTokenizer.from_pretrained(spec.pretrained),
            SpeechT5FeatureExtractor.from_pretrained(spec.pretrained),
            *_extras(spec.pretrained, spec.vocoder, spec.speaker_embedding, model),
        )
        return processor, model
    tokenizer = _character_tokenizer(list(train["input"]))
    extractor = SpeechT5FeatureExtractor()
    # The model standardizes frames by the training split's level and spread (one of each).
    frames = np.concatenate([log_mel(extractor, waveform) for waveform in train["label"]])
    config = AlignedTTSConfig(
        vocab_size=len(tokenizer),
        num_mel_bins=extractor.num_mel_bins,
        hidden_size=spec.hidden_size,
        encoder_layers=spec.encoder_layers,
        decoder_layers=spec.decoder_layers,
        dropout=spec.dropout,
        alignment_warmup_steps=spec.alignment_warmup_steps,
        mel_mean=[round(float(frames.mean()), 4)] * extractor.num_mel_bins,
        mel_std=[round(float(frames.std()), 4)] * extractor.num_mel_bins,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = AlignedTTS(config)
    vocoder, _ = _extras(None, spec.vocoder, None, model)
    return SpeechProcessor(tokenizer, extractor, vocoder), model


def load(model_dir: Path):
    from transformers import AutoTokenizer, SpeechT5FeatureExtractor

    model = _model_class(model_dir).from_pretrained(model_dir)
    processor = SpeechProcessor(
        AutoTokenizer.from_pretrained(model_dir),
        SpeechT5FeatureExtractor.from_pretrained(model_dir),
        *_extras(model_dir, None, None, model),
    )
    return processor, model


def preprocess(processor: Any, inputs: list[str]) -> dict[str, Any]:
    """Text to token ids, without the characters the model has no sound for (`skipped_characters`
    names them): the one function training, `predict` and `serve` all use."""
    return {"input_ids": processor.tokenizer([_speakable(processor, t) for t in inputs]).input_ids}


def _unspeakable(processor: Any, text: str) -> set[str]:
    """The characters of `text` the tokenizer can only write as its unknown token. Each is asked
    alone, so this holds for any tokenizer (the character one made here, SentencePiece)."""
    tokenizer = processor.tokenizer
    unknown = set()
    for char in set(text):
        if char.isspace():
            continue
        ids = tokenizer(char, add_special_tokens=False).input_ids
        if not ids or tokenizer.unk_token_id in ids:
            unknown.add(char)
    return unknown


def _speakable(processor: Any, text: str) -> str:
    unknown = _unspeakable(processor, text)
    return "".join(char for char in text if char not in unknown)


def skipped_characters(processor: Any, value: str, name: str = "input") -> str:
    """The characters that no training transcript holds: the model never learned a sound for
    them, so they are left out rather than spoken as noise. Refused when no other character
    would be left to speak."""
    unknown = _unspeakable(processor, value)
    skipped = "".join(dict.fromkeys(char for char in value if char in unknown))
    if not "".join(char for char in value if char not in unknown).strip():
        known = "".join(
            sorted(c for c in processor.tokenizer.get_vocab() if len(c) == 1 and not c.isspace())
        )
        raise FlywheelError(
            f"{name}: none of its characters is one the model can speak (it learned {known!r}): "
            "write the text in the alphabet of its training transcripts"
        )
    return skipped


def input_schema(processor: Any) -> dict[str, Any]:
    """At most MAX_CHARACTERS characters, one of which the model can speak: the characters of its
    vocabulary that `skipped_characters` would not leave out, as a regular expression's class."""
    vocabulary = {char for token in processor.tokenizer.get_vocab() for char in token}
    unknown = _unspeakable(processor, "".join(vocabulary))
    speakable = sorted(char for char in vocabulary - unknown if not char.isspace())
    # Escaped as every regular expression dialect (ECMA, Python, Rust) reads them in a class.
    escaped = "".join(f"\\{char}" if char in "\\[]^-" else char for char in speakable)
    return text_schema(MAX_CHARACTERS, f"[{escaped}]")


def augmentation(params: Any) -> Callable[[Any], Any] | None:
    """Utterances are trained on as they are: no altered copies."""
    return None


def training_features(processor: Any):
    def transform(batch: dict[str, list]) -> dict[str, Any]:
        labels = [processor.log_mel(waveform) for waveform in batch["label"]]
        return {**preprocess(processor, batch["input"]), "labels": labels}

    return transform


@dataclass
class SpeechCollator:
    """Pads token ids with the pad id and spectrograms with -100 (left out of the loss); adds
    the speaker embedding for SpeechT5."""

    processor: Any

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        ids = [np.asarray(row["input_ids"], dtype=np.int64) for row in rows]
        width = max(len(row) for row in ids)
        input_ids = np.full((len(ids), width), self.processor.tokenizer.pad_token_id)
        attention_mask = np.zeros((len(ids), width), dtype=np.int64)
        for index, row in enumerate(ids):
            input_ids[index, : len(row)] = row
            attention_mask[index, : len(row)] = 1
        batch = {
            "input_ids": torch.as_tensor(input_ids),
            "attention_mask": torch.as_tensor(attention_mask),
        }
        if "labels" in rows[0]:
            mels = [np.asarray(row["labels"], dtype=np.float32) for row in rows]
            frames = max(len(mel) for mel in mels)
            labels = np.full((len(mels), frames, mels[0].shape[-1]), -100.0, dtype=np.float32)
            for index, mel in enumerate(mels):
                labels[index, : len(mel)] = mel
            batch["labels"] = torch.as_tensor(labels)
        if self.processor.speaker_embedding is not None:
            speaker = torch.as_tensor(self.processor.speaker_embedding)
            batch["speaker_embeddings"] = speaker.expand(len(rows), -1).contiguous()
        return batch


def collator(processor: Any) -> SpeechCollator:
    return SpeechCollator(processor)


def _cepstra(log10_mel: np.ndarray) -> np.ndarray:
    """Mel cepstra 1-12 of log10-mel frames (c0, the loudness, is left out as usual). Bands
    below -100 dB count as -100 dB: how silent inaudible silence is must not dominate."""
    from scipy.fft import dct

    audible = np.maximum(np.asarray(log10_mel, dtype=np.float64), SILENCE_LOG10)
    return dct(audible * math.log(10), norm="ortho", axis=-1)[:, 1:13]


def mel_cepstral_distortion(reference: np.ndarray, synthesized: np.ndarray) -> float:
    """Mel-cepstral distortion (dB) between two log-mel spectrograms after dynamic time warping,
    so a synthesis at another speed is judged by its sounds, not its timing."""
    a, b = _cepstra(reference), _cepstra(synthesized)
    if not len(a) or not len(b):
        return float("nan")
    cost = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    rows, columns = cost.shape
    # total[i, j]: the cheapest warping path's cost to frame pair (i, j); steps: its length.
    total = np.full((rows + 1, columns + 1), np.inf)
    steps = np.zeros((rows + 1, columns + 1))
    total[0, 0] = 0.0
    # One anti-diagonal (i + j constant) at a time: its cells depend only on the two before.
    for diagonal in range(2, rows + columns + 1):
        i = np.arange(max(1, diagonal - columns), min(rows, diagonal - 1) + 1)
        j = diagonal - i
        options = np.stack([total[i - 1, j - 1], total[i - 1, j], total[i, j - 1]])
        lengths = np.stack([steps[i - 1, j - 1], steps[i - 1, j], steps[i, j - 1]])
        best = options.argmin(axis=0)
        cells = np.arange(len(i))
        total[i, j] = cost[i - 1, j - 1] + options[best, cells]
        steps[i, j] = lengths[best, cells] + 1
    return float(10 / math.log(10) * math.sqrt(2) * total[rows, columns] / steps[rows, columns])


def _pairs(prediction: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """(reference, synthesized) log-mel spectrograms of each utterance, padding removed."""
    spectrograms, lengths = prediction.predictions[:2]
    references = np.asarray(prediction.label_ids)
    pairs = []
    for reference, synthesized, length in zip(references, spectrograms, lengths, strict=True):
        frames = int((reference != -100).any(axis=-1).sum())
        pairs.append((reference[:frames], np.asarray(synthesized)[: int(length)]))
    return pairs


def compute_metrics(processor: Any):
    def metrics(prediction: Any) -> dict[str, float]:
        pairs = _pairs(prediction)
        return {
            "mcd": float(np.mean([mel_cepstral_distortion(ref, syn) for ref, syn in pairs])),
            # Synthesized over reference duration: 1 when the model speaks at the data's pace.
            "length_ratio": float(np.mean([len(syn) / max(len(ref), 1) for ref, syn in pairs])),
        }

    return metrics


def baselines(train: Any, test: Any, params: Any) -> dict[str, dict[str, float]]:
    """Frames without a model, scored like the model against the test split's audio."""
    from transformers import SpeechT5FeatureExtractor

    from .synthesis import even_alignment

    extractor = SpeechT5FeatureExtractor()
    train_mels = [log_mel(extractor, waveform) for waveform in train["label"]]
    test_mels = [log_mel(extractor, waveform) for waveform in test["label"]]
    train_texts, test_texts = list(train["input"]), list(test["input"])
    frames_per_char = sum(len(mel) for mel in train_mels) / sum(len(t) + 2 for t in train_texts)
    mean_frame = np.concatenate(train_mels).mean(axis=0)
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    for text, mel in zip(train_texts, train_mels, strict=True):
        units = [BOS, *text.lower(), EOS]
        edges = np.concatenate([[0], np.cumsum(even_alignment(len(units), len(mel)))])
        for unit, start, end in zip(units, edges[:-1], edges[1:], strict=True):
            if end > start:
                sums[unit] = sums.get(unit, 0) + mel[start:end].sum(axis=0)
                counts[unit] = counts.get(unit, 0) + end - start
    span = max(1, round(frames_per_char))

    def concatenated(text: str) -> np.ndarray:
        units = [BOS, *text.lower(), EOS]
        return np.concatenate(
            [np.tile(sums[u] / counts[u] if u in counts else mean_frame, (span, 1)) for u in units]
        )

    def score(synthesized: list[np.ndarray]) -> dict[str, float]:
        distances = [
            mel_cepstral_distortion(ref, syn)
            for ref, syn in zip(test_mels, synthesized, strict=True)
        ]
        return {"mcd": float(np.mean(distances))}

    return {
        "mean_frame": score([np.tile(mean_frame, (span * (len(t) + 2), 1)) for t in test_texts]),
        "unit_concatenation": score([concatenated(text) for text in test_texts]),
    }


def _waveforms(processor: Any, outputs: Any) -> list[np.ndarray]:
    spectrograms = outputs.spectrogram.float().cpu().numpy()
    return [
        processor.waveform(spectrogram[: int(length)])
        for spectrogram, length in zip(spectrograms, outputs.lengths.tolist(), strict=True)
    ]


def postprocess(processor: Any, model: Any, outputs: Any) -> list[dict[str, Any]]:
    """Each synthesized waveform as a base64 WAV file (16 kHz mono, 32-bit float samples)."""
    return [
        {
            "audio_wav_base64": base64.b64encode(audio.encode_wav(wave)).decode("ascii"),
            "duration_s": round(len(wave) / audio.SAMPLING_RATE, 3),
        }
        for wave in _waveforms(processor, outputs)
    ]


def report(
    processor: Any, model: Any, prediction: Any, test: Any, plots_dir: Path
) -> dict[str, float]:
    """Test-split MCD, spectrograms to compare by eye (`spectrograms.png`), and every test
    utterance synthesized (`synthesized/`, with a `metadata.csv` of file and transcript in the
    layout `data.source` reads, so a recognizer can transcribe them)."""
    from ...training import plots

    pairs = _pairs(prediction)
    texts = list(test["input"])
    folder = plots_dir / "synthesized"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "metadata.csv").open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(["file_name", "transcription"])
        for index, (text, (_, synthesized)) in enumerate(zip(texts, pairs, strict=True)):
            name = f"utterance_{index:04d}.wav"
            (folder / name).write_bytes(audio.encode_wav(processor.waveform(synthesized)))
            writer.writerow([name, text])
    plots.spectrograms(pairs[:3], texts[:3], plots_dir / "spectrograms.png")
    return compute_metrics(processor)(prediction)


def decode_input(raw: str | bytes, name: str = "input") -> str:
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    if not text.strip():
        raise FlywheelError(f"{name}: the text is empty: send at least one non-blank character")
    if len(text) > MAX_CHARACTERS:
        raise FlywheelError(
            f"{name}: the text is longer than {MAX_CHARACTERS} characters: "
            "synthesize it a sentence or a paragraph at a time"
        )
    return text


def write_examples(dataset: Any, out_dir: Path) -> list[Path]:
    """Text inputs are typed on the command line: no example files to write."""
    return []


def example_input(dataset: Any) -> str:
    """One raw input as a client would send it (the MLflow model's input example)."""
    return dataset[0]["input"]


# Shadow replay's scale for MCD: two syntheses 10 dB apart agree by exp(-1), about 0.37.
AGREEMENT_MCD_DB = 10.0


def agreement(champion: dict[str, Any], candidate: dict[str, Any]) -> float:
    """Shadow replay: exp(-MCD / 10 dB) between the two syntheses (1 for the same sounds, at any
    speed: MCD aligns them first)."""
    from transformers import SpeechT5FeatureExtractor

    extractor = SpeechT5FeatureExtractor()  # its defaults: no download, the same for both
    spectrograms = [
        log_mel(extractor, audio.decode(base64.b64decode(answer["audio_wav_base64"])))
        for answer in (champion, candidate)
    ]
    distance = mel_cepstral_distortion(*spectrograms)
    return 0.0 if math.isnan(distance) else math.exp(-distance / AGREEMENT_MCD_DB)


def output_features(prediction: dict[str, Any]) -> dict[str, Any]:
    return {"duration_s_out": float(prediction["duration_s"])}


def target_features(split: Any) -> Any:
    """A true answer is a waveform: its duration."""
    return lambda label: {"duration_s_out": len(label) / audio.SAMPLING_RATE}


def write_predictions(
    values: list[str], predictions: list[dict[str, Any]], out_dir: Path
) -> list[dict[str, Any]]:
    """`predict`'s speech as WAV files in `out_dir`, named by position and text; each
    prediction becomes the file's path and duration."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for index, (text, prediction) in enumerate(zip(values, predictions, strict=True)):
        stem = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:40] or "speech"
        path = out_dir / f"{index}_{stem}.wav"
        path.write_bytes(base64.b64decode(prediction["audio_wav_base64"]))
        kept = {k: v for k, v in prediction.items() if k not in ("audio_wav_base64", "duration_s")}
        written.append({"file": str(path), "duration_s": prediction["duration_s"], **kept})
    return written
