"""Audio code shared by the speech tasks."""

import numpy as np
from datasets import Dataset

from {{ cookiecutter.package_name }}.tasks.audio import encode_wav, hub_waveforms


def test_hub_audio_columns_become_waveforms() -> None:
    """What `hf:` sources go through: an `Audio` column decoded with soundfile, not torchcodec."""
    wave = (0.5 * np.sin(np.linspace(0, 200, 8000))).astype(np.float32)
    hub_like = Dataset.from_dict({"audio": [{"bytes": encode_wav(wave), "path": None}]})
    decoded = hub_waveforms(hub_like, "audio")
    assert np.array_equal(np.asarray(decoded[0]["audio"], dtype=np.float32), wave)
