"""The text-to-speech task's own parts: its data layout, its metric, its alignment, WAV files
from `predict`, and a SpeechT5 checkpoint with a vocoder and a speaker embedding by config."""

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.core.config import load_params
from {{ cookiecutter.package_name }}.core.errors import FlywheelError
from {{ cookiecutter.package_name }}.core.paths import MODEL_DIR, ONNX_DIR, PREPARED_DIR
from {{ cookiecutter.package_name }}.data.prepare import load_prepared, prepare
from {{ cookiecutter.package_name }}.serving.predict import Predictor
from {{ cookiecutter.package_name }}.tasks.text_to_speech.synthesis import (
    even_alignment,
    monotonic_alignment,
)
from {{ cookiecutter.package_name }}.tasks.text_to_speech.task import (
    MAX_CHARACTERS,
    mel_cepstral_distortion,
)
from {{ cookiecutter.package_name }}.training.train import train


def test_a_local_folder_with_metadata_is_loaded(tmp_path: Path) -> None:
    folder = tmp_path / "speech"
    folder.mkdir()
    rows = ["file_name,transcription"]
    for i in range(30):
        soundfile.write(folder / f"{i}.wav", np.zeros(1600, dtype=np.float32), 16_000)
        rows.append(f"{i}.wav,Hello World {i}")
    (folder / "metadata.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    params = load_params()
    data = params.data.model_copy(update={"source": str(folder)})
    sizes = prepare(params.model_copy(update={"data": data}), tmp_path / "prepared")
    assert sum(sizes.values()) == 30
    train_split = load_prepared(tmp_path / "prepared")["train"]
    # The transcript is what the model reads, the audio what it learns to say.
    assert all(text.startswith("hello world ") for text in train_split["input"])
    assert all(len(wave) == 1600 for wave in train_split["label"])


def test_a_folder_without_metadata_is_named(tmp_path: Path) -> None:
    params = load_params()
    data = params.data.model_copy(update={"source": str(tmp_path)})
    with pytest.raises(FlywheelError, match=r"metadata\.csv not found"):
        prepare(params.model_copy(update={"data": data}), tmp_path / "prepared")


def test_the_distortion_ignores_timing_and_measures_sound() -> None:
    rng = np.random.default_rng(0)
    frames = rng.normal(-3, 1, (40, 80))
    assert mel_cepstral_distortion(frames, frames) == 0
    # The same sounds at half the speed: dynamic time warping aligns them.
    assert mel_cepstral_distortion(frames, np.repeat(frames, 2, axis=0)) == pytest.approx(0)
    other = rng.normal(-3, 1, (40, 80))
    assert mel_cepstral_distortion(frames, other) > 5


@pytest.mark.parametrize("spans", [[3, 1, 5, 2], [1, 1, 1], [7], [1, 6]])
def test_monotonic_alignment_finds_each_tokens_frames(spans: list[int]) -> None:
    owner = np.repeat(np.arange(len(spans)), spans)
    # Each frame is likeliest under its own token; every other token is equally unlikely.
    likelihood = np.where(np.arange(len(spans))[:, None] == owner[None, :], 0.0, -1.0)
    assert monotonic_alignment(likelihood).tolist() == spans


def test_even_alignment_shares_every_frame_out() -> None:
    for tokens, frames in [(3, 10), (5, 5), (4, 37)]:
        spans = even_alignment(tokens, frames)
        assert spans.sum() == frames and spans.max() - spans.min() <= 1


def test_a_text_too_long_to_speak_at_once_is_refused_in_one_line(trained) -> None:
    from fastapi.testclient import TestClient

    from {{ cookiecutter.package_name }}.serving.serve import create_app

    too_long = "mas kilo " * (MAX_CHARACTERS // 9 + 1)
    with TestClient(create_app(MODEL_DIR)) as client:
        response = client.post("/predict", json={"texts": ["le", too_long]})
    assert response.status_code == 422  # the schema's maxLength: a rule it states, broken
    assert response.json()["detail"] == (
        f"texts[1]: the text is longer than {MAX_CHARACTERS} characters: "
        "synthesize it a sentence or a paragraph at a time"
    )


def test_characters_without_a_sound_are_skipped_and_named_and_none_else_is_refused(
    trained, tmp_path
) -> None:
    """The toy language has no digits or pilcrows: `predict` and `serve` leave them out and say
    so, and refuse a text of nothing else, in one line."""
    from fastapi.testclient import TestClient

    from {{ cookiecutter.package_name }}.serving.serve import create_app

    result = CliRunner().invoke(app, ["predict", "mas 42 kilo¶", "--out-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    [answer] = [json.loads(line) for line in result.stdout.splitlines()]
    assert answer["skipped_characters"] == "42¶"
    warning = "warning: input 1: skipped '42¶': the model learned no sound for them"
    assert warning in result.output
    # Skipped, not spoken: the answer is the speech of the text without them.
    assert answer["duration_s"] == Predictor().predict(["mas  kilo"])[0]["duration_s"]

    result = CliRunner().invoke(app, ["predict", "123 ¶¶", "--out-dir", str(tmp_path)])
    assert result.exit_code == 1
    line = result.output.strip()
    assert line.startswith("error: input 1: none of its characters is one the model can speak")
    assert "\n" not in line and len(list(tmp_path.glob("*.wav"))) == 1
    with TestClient(create_app(MODEL_DIR)) as client:
        refused = client.post("/predict", json={"texts": ["mas", "123 ¶¶"]})
        answered = client.post("/predict", json={"texts": ["mas 42"]})
    assert refused.status_code == 422
    assert refused.json()["detail"].startswith("texts[1]: none of its characters is one")
    assert answered.status_code == 200
    assert answered.json()["predictions"][0]["skipped_characters"] == "42"


def test_predict_writes_wav_files_and_prints_their_durations(trained, tmp_path) -> None:
    result = CliRunner().invoke(
        app, ["predict", "mas kilo", "le", "--out-dir", str(tmp_path / "out")]
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [line["input"] for line in lines] == ["mas kilo", "le"]
    for line in lines:
        samples, rate = soundfile.read(line["file"])
        assert rate == 16_000
        assert line["duration_s"] == pytest.approx(len(samples) / rate, abs=1e-3)
    # Longer text, longer speech: the durations are learned, not fixed.
    assert lines[0]["duration_s"] > lines[1]["duration_s"] > 0


def test_synthesized_speech_has_the_sounds_of_its_letters(trained) -> None:
    """The toy language's letters are tone pairs: the speech for a letter carries its tones."""
    from {{ cookiecutter.package_name }}.tasks.toy_speech import LETTER_TONES

    for letter in ("o", "s"):
        [answer] = Predictor(MODEL_DIR).predict([letter])
        samples, rate = soundfile.read(io.BytesIO(base64.b64decode(answer["audio_wav_base64"])))
        spectrum = np.abs(np.fft.rfft(samples))
        frequencies = np.fft.rfftfreq(len(samples), 1 / rate)
        loudest = frequencies[np.argmax(spectrum)]
        assert min(abs(loudest - tone) for tone in LETTER_TONES[letter]) < 60, (letter, loudest)


def _speecht5_checkpoint(folder: Path, texts: list[str]) -> dict[str, str]:
    """A SpeechT5 model with its character SentencePiece tokenizer, a HiFi-GAN vocoder and a
    speaker embedding as the Hub holds them (random weights, tiny sizes), saved locally: what
    `model.pretrained: microsoft/speecht5_tts`, `model.vocoder: microsoft/speecht5_hifigan` and
    an x-vector file load, offline."""
    import sentencepiece
    from transformers import (
        SpeechT5Config,
        SpeechT5FeatureExtractor,
        SpeechT5ForTextToSpeech,
        SpeechT5HifiGan,
        SpeechT5HifiGanConfig,
        SpeechT5Tokenizer,
    )

    folder.mkdir(parents=True, exist_ok=True)
    # SpeechT5's own special-token ids: <s> 0, <pad> 1, </s> 2, <unk> 3.
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_prefix=str(folder / "spm_char"),
        model_type="char",
        vocab_size=len(set("".join(texts))) + 4,
        character_coverage=1.0,
        bos_id=0,
        pad_id=1,
        eos_id=2,
        unk_id=3,
        minloglevel=2,
    )
    tokenizer = SpeechT5Tokenizer(vocab_file=str(folder / "spm_char.model"))
    config = SpeechT5Config(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        hidden_size=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        speech_decoder_prenet_units=32,
        speech_decoder_postnet_units=32,
        speech_decoder_postnet_layers=2,
        speaker_embedding_dim=16,
        max_speech_positions=600,
        max_text_positions=200,
    )
    SpeechT5ForTextToSpeech(config).save_pretrained(folder / "tts")
    tokenizer.save_pretrained(folder / "tts")
    SpeechT5FeatureExtractor().save_pretrained(folder / "tts")
    vocoder = SpeechT5HifiGanConfig(
        upsample_initial_channel=32,
        upsample_rates=[4, 4, 4, 4],
        upsample_kernel_sizes=[8, 8, 8, 8],
        resblock_kernel_sizes=[3],
        resblock_dilation_sizes=[[1, 3]],
    )
    SpeechT5HifiGan(vocoder).save_pretrained(folder / "hifigan")
    np.save(folder / "speaker.npy", np.linspace(-1, 1, 16, dtype=np.float32))
    return {
        "pretrained": str(folder / "tts"),
        "vocoder": str(folder / "hifigan"),
        "speaker_embedding": str(folder / "speaker.npy"),
    }


def test_a_speecht5_checkpoint_with_vocoder_and_speaker_trains_and_speaks(
    trained, tmp_path, monkeypatch
) -> None:
    checkpoint = _speecht5_checkpoint(tmp_path / "hub", list(load_prepared()["train"]["input"]))
    (tmp_path / PREPARED_DIR).mkdir(parents=True)
    for name, split in load_prepared().items():
        split.select(range(8)).to_parquet(tmp_path / PREPARED_DIR / f"{name}.parquet")
    monkeypatch.chdir(tmp_path)
    params = trained.params
    model = params.model.model_copy(update=checkpoint)
    one_epoch = params.train.model_copy(update={"epochs": 1, "batch_size": 4})
    result = train(params.model_copy(update={"model": model, "train": one_epoch}))
    # Scored like the small model: the same metrics, beside the same baselines.
    assert set(result.metrics) == {"mcd", "length_ratio", "loss", "baselines"}
    assert 0 < result.metrics["mcd"] < float("inf") and result.metrics["length_ratio"] > 0
    saved = tmp_path / MODEL_DIR
    # The vocoder and the speaker travel with the model: serving needs nothing else.
    assert (saved / "vocoder" / "config.json").is_file()
    assert np.load(saved / "speaker_embedding.npy").shape == (16,)
    [answer, unusual] = Predictor(saved).predict(["mas", "ma s¶"])
    # SentencePiece's own word boundary keeps the space; only the character it never saw goes.
    assert "skipped_characters" not in answer and unusual["skipped_characters"] == "¶"
    samples, rate = soundfile.read(io.BytesIO(base64.b64decode(answer["audio_wav_base64"])))
    assert rate == 16_000 and len(samples) % 256 == 0 and len(samples) > 0


def test_a_speaker_embedding_of_the_wrong_size_is_named(trained, tmp_path) -> None:
    from {{ cookiecutter.package_name }}.data.prepare import build_model

    checkpoint = _speecht5_checkpoint(tmp_path, list(load_prepared()["train"]["input"]))
    np.save(tmp_path / "speaker.npy", np.zeros(512, dtype=np.float32))
    params = trained.params
    model = params.model.model_copy(update=checkpoint)
    with pytest.raises(FlywheelError, match=r"model\.speaker_embedding: .* holds 512 values"):
        build_model(params.model_copy(update={"model": model}), load_prepared()["train"])


def test_a_checkpoint_of_another_architecture_is_named(trained, tmp_path) -> None:
    from transformers import BertConfig, BertModel

    from {{ cookiecutter.package_name }}.data.prepare import build_model

    BertModel(
        BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=1)
    ).save_pretrained(tmp_path / "bert")
    params = trained.params
    model = params.model.model_copy(update={"pretrained": str(tmp_path / "bert")})
    with pytest.raises(FlywheelError, match=r"model\.pretrained: .* holds a bert model: use a"):
        build_model(params.model_copy(update={"model": model}), load_prepared()["train"])


def test_export_says_in_one_line_why_speech_has_no_onnx_graph(trained) -> None:
    result = CliRunner().invoke(app, ["export"])
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert line.startswith("error: text-to-speech models are not exported to ONNX: the number of")
    assert line.endswith("serve with `serve.runtime: torch` in params.yaml")
    assert not ONNX_DIR.exists()
    with pytest.raises(FlywheelError, match="not exported to ONNX"):
        Predictor(runtime="onnx")
