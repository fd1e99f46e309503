"""The audio-classification task's own data layout, read as the README documents it."""

from pathlib import Path

from {{ cookiecutter.package_name }}.core.config import load_params
from {{ cookiecutter.package_name }}.data.prepare import load_prepared, prepare


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
