from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.config import PREPARED_DIR, load_params
from {{ cookiecutter.package_name }}.data import SPLITS, data_hash, load_prepared, prepare
from {{ cookiecutter.package_name }}.errors import FlywheelError


def test_prepare_is_deterministic(tmp_path: Path) -> None:
    params = load_params()
    prepare(params, tmp_path / "first")
    prepare(params, tmp_path / "second")
    assert data_hash(tmp_path / "first") == data_hash(tmp_path / "second")


def test_splits_are_non_empty_and_sized_by_the_fractions(trained) -> None:
    splits = load_prepared()
    sizes = {name: len(splits[name]) for name in SPLITS}
    total = sum(sizes.values())
    assert all(size > 0 for size in sizes.values())
    fraction = trained.params.data.test_fraction
    assert abs(sizes["test"] / total - fraction) < 0.05
    assert set(splits["train"].column_names) == {"input", "label"}


def test_a_missing_source_is_named(tmp_path: Path) -> None:
    params = load_params()
    bad = params.model_copy(update={"data": params.data.model_copy(update={"source": "nope/x"})})
    with pytest.raises(FlywheelError, match=r"data\.source: nope/x does not exist"):
        prepare(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_failed_prepare_keeps_the_previous_data(trained) -> None:
    before = data_hash(PREPARED_DIR)
    params = trained.params
    bad = params.model_copy(update={"data": params.data.model_copy(update={"source": "nope"})})
    with pytest.raises(FlywheelError):
        prepare(bad)
    assert data_hash(PREPARED_DIR) == before
{%- if cookiecutter.task == 'text-classification' %}


def test_a_local_csv_source_is_loaded_and_its_labels_encoded(tmp_path: Path) -> None:
    rows = ["review,sentiment"] + [
        f"{word} item number {i},{label}"
        for i in range(40)
        for word, label in (("great", "good"), ("awful", "bad"))
    ]
    source = tmp_path / "reviews.csv"
    source.write_text("\n".join(rows) + "\n", encoding="utf-8")
    params = load_params()
    data = params.data.model_copy(
        update={"source": str(source), "input_column": "review", "target_column": "sentiment"}
    )
    sizes = prepare(params.model_copy(update={"data": data}), tmp_path / "prepared")
    assert sum(sizes.values()) == 80
    train = load_prepared(tmp_path / "prepared")["train"]
    assert sorted(train.features["label"].names) == ["bad", "good"]
{%- elif cookiecutter.task == 'image-classification' %}


def test_a_local_image_folder_is_loaded(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for label, level in (("dark", 40), ("bright", 210)):
        (tmp_path / "images" / label).mkdir(parents=True)
        for i in range(20):
            pixels = np.clip(rng.normal(level, 20, (12, 12)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels, mode="L").save(tmp_path / "images" / label / f"{i}.png")
    params = load_params()
    data = params.data.model_copy(update={"source": str(tmp_path / "images")})
    sizes = prepare(params.model_copy(update={"data": data}), tmp_path / "prepared")
    assert sum(sizes.values()) == 40
    train = load_prepared(tmp_path / "prepared")["train"]
    assert sorted(train.features["label"].names) == ["bright", "dark"]
    assert train[0]["input"].size == (12, 12)
{%- elif cookiecutter.task == 'audio-classification' %}


def test_a_local_audio_folder_is_loaded_and_resampled(tmp_path: Path) -> None:
    import numpy as np
    import soundfile

    t = np.arange(4410) / 44_100  # 0.1 s at 44.1 kHz: prepare resamples to 16 kHz
    for label, frequency in (("low", 220.0), ("high", 1760.0)):
        (tmp_path / "clips" / label).mkdir(parents=True)
        for i in range(20):
            wave = 0.5 * np.sin(2 * np.pi * (frequency + i) * t)
            soundfile.write(tmp_path / "clips" / label / f"{i}.wav", wave, 44_100)
    params = load_params()
    data = params.data.model_copy(update={"source": str(tmp_path / "clips")})
    sizes = prepare(params.model_copy(update={"data": data}), tmp_path / "prepared")
    assert sum(sizes.values()) == 40
    train = load_prepared(tmp_path / "prepared")["train"]
    assert sorted(train.features["label"].names) == ["high", "low"]
    assert len(train[0]["input"]) == 1600
{%- elif cookiecutter.task == 'speech-recognition' %}


def test_a_local_folder_with_metadata_is_loaded(tmp_path: Path) -> None:
    import numpy as np
    import soundfile

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
    labels = set(load_prepared(tmp_path / "prepared")["train"]["label"])
    assert all(label.startswith("hello world ") for label in labels)


def test_a_folder_without_metadata_is_named(tmp_path: Path) -> None:
    params = load_params()
    data = params.data.model_copy(update={"source": str(tmp_path)})
    with pytest.raises(FlywheelError, match=r"metadata\.csv not found"):
        prepare(params.model_copy(update={"data": data}), tmp_path / "prepared")
{%- endif %}
{%- if cookiecutter.__modality == 'speech' %}


def test_hub_audio_columns_become_waveforms() -> None:
    """What `hf:` sources go through: an `Audio` column decoded with soundfile, not torchcodec."""
    import numpy as np
    from datasets import Dataset

    from {{ cookiecutter.package_name }}.audio import encode_wav
    from {{ cookiecutter.package_name }}.data import hub_waveforms

    wave = (0.5 * np.sin(np.linspace(0, 200, 8000))).astype(np.float32)
    hub_like = Dataset.from_dict({"audio": [{"bytes": encode_wav(wave), "path": None}]})
    decoded = hub_waveforms(hub_like, "audio")
    assert np.array_equal(np.asarray(decoded[0]["audio"], dtype=np.float32), wave)
{%- endif %}
