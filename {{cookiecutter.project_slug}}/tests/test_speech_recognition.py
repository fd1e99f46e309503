"""The speech-recognition task's own data layout, read as the README documents it."""

from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.core.config import load_params
from {{ cookiecutter.package_name }}.core.errors import FlywheelError
from {{ cookiecutter.package_name }}.data.prepare import load_prepared, prepare


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
