"""The image-classification task's own data layout, read as the README documents it."""

from pathlib import Path

from {{ cookiecutter.package_name }}.core.config import load_params
from {{ cookiecutter.package_name }}.data.prepare import load_prepared, prepare


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
