"""Vision image classification: a Vision Transformer over an image processor.

Embedded default: scikit-learn's bundled handwritten digits (1,797 images of 8x8 pixels, ten
classes), stored as PNG, so nothing is downloaded; a 2-layer ViT is built from a config. Setting
`model.pretrained` (e.g. `google/vit-base-patch16-224`, or a local checkpoint folder) loads that
image processor and model instead, and `data.source` points at an image folder with one
sub-folder per class, or `hf:<dataset>`.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from pydantic import Field

from ..classification import compute_metrics, label_config, postprocess, report, with_labels
from ..errors import FlywheelError
from ..schema import DataSource, Section

INPUT_KIND = "image"
TARGET = "class"

__all__ = ["compute_metrics", "postprocess", "report"]


class DataParams(DataSource):
    pass


class ModelParams(Section):
    # A Hugging Face checkpoint id or a local folder; null builds the tiny model below from scratch.
    pretrained: str | None
    image_size: int = Field(ge=8)
    patch_size: int = Field(ge=2)
    hidden_size: int = Field(ge=8)
    num_layers: int = Field(ge=1)
    num_heads: int = Field(ge=1)
    intermediate_size: int = Field(ge=8)
    dropout: float = Field(ge=0, lt=1)


def embedded_dataset(params: Any):
    """scikit-learn's digits as 8-bit grayscale images with labels "0" to "9"."""
    import numpy as np
    from datasets import ClassLabel, Dataset, Features, Image
    from PIL import Image as PILImage
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = (digits.images * (255 / 16)).round().astype(np.uint8)
    features = Features({"input": Image(), "label": ClassLabel(names=[str(d) for d in range(10)])})
    images = [PILImage.fromarray(image, mode="L") for image in pixels]
    return Dataset.from_dict({"input": images, "label": digits.target.tolist()}, features=features)


def load_source(source: Path, params: Any):
    """An image folder: `source/<class name>/<image file>`."""
    from datasets import load_dataset

    if not source.is_dir():
        raise FlywheelError(
            f"data.source: {source} is not a folder: use one sub-folder of images per class"
        )
    from datasets import Image

    column = params.data.input_column
    files = load_dataset("imagefolder", data_dir=str(source), split="train")
    if column != "image":
        files = files.rename_column("image", column)
    files = files.cast_column(column, Image(decode=False))

    def embed(row: dict[str, Any]) -> dict[str, Any]:
        # The prepared Parquet must hold the image bytes, not paths into the source folder.
        image = row[column]
        return {column: {"bytes": image["bytes"] or Path(image["path"]).read_bytes(), "path": None}}

    return files.map(embed).cast_column(column, Image())


def build(params: Any, train: Any, labels: list[str]):
    """Image processor and model: from `model.pretrained`, or configured from scratch."""
    from transformers import (
        AutoImageProcessor,
        AutoModelForImageClassification,
        ViTConfig,
        ViTForImageClassification,
        ViTImageProcessor,
    )

    spec = params.model
    if spec.pretrained:
        processor = AutoImageProcessor.from_pretrained(spec.pretrained)
        model = AutoModelForImageClassification.from_pretrained(
            spec.pretrained,
            ignore_mismatched_sizes=True,
            **label_config(labels),
        )
        return processor, model
    processor = ViTImageProcessor(
        size={"height": spec.image_size, "width": spec.image_size},
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )
    config = ViTConfig(
        image_size=spec.image_size,
        patch_size=spec.patch_size,
        num_channels=3,
        hidden_size=spec.hidden_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        intermediate_size=spec.intermediate_size,
        hidden_dropout_prob=spec.dropout,
        attention_probs_dropout_prob=spec.dropout,
        **label_config(labels),
    )
    return processor, ViTForImageClassification(config)


def load(model_dir: Path):
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    processor = AutoImageProcessor.from_pretrained(model_dir)
    return processor, AutoModelForImageClassification.from_pretrained(model_dir)


def preprocess(processor: Any, inputs: list[Any]) -> dict[str, Any]:
    """Images to pixel values: the one function training, `predict` and `serve` all use."""
    return processor(images=[image.convert("RGB") for image in inputs])


def training_features(processor: Any):
    return with_labels(preprocess, processor)


def collator(processor: Any):
    from transformers import DefaultDataCollator

    return DefaultDataCollator()


def decode_input(raw: Any):
    """An uploaded or stored file's bytes (or an already decoded image) to a PIL image."""
    from PIL import Image, UnidentifiedImageError

    if not isinstance(raw, bytes | bytearray):
        return raw
    try:
        with Image.open(io.BytesIO(raw)) as image:
            image.load()
            return image.copy()
    except (UnidentifiedImageError, OSError) as error:
        raise FlywheelError(f"input: the file cannot be decoded as an image ({error})") from None


def _encoded_files(dataset: Any) -> Any:
    from datasets import Image

    return dataset.cast_column("input", Image(decode=False))


def example_input(dataset: Any) -> bytes:
    """One raw input as a client would send it: the image file's bytes."""
    return _encoded_files(dataset)[0]["input"]["bytes"]


def write_examples(dataset: Any, out_dir: Path) -> list[Path]:
    """One image file per class from the test split, for `make predict` and `curl`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    names = dataset.features["label"].names
    written: dict[int, Path] = {}
    for row in _encoded_files(dataset):
        if row["label"] not in written:
            path = out_dir / f"{names[row['label']]}.png"
            path.write_bytes(row["input"]["bytes"])
            written[row["label"]] = path
    return sorted(written.values())
