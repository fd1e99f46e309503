"""Vision image classification: a small ResNet over an image processor.

Embedded default: scikit-learn's bundled handwritten digits (1,797 images of 8x8 pixels, ten
classes), stored as PNG, so nothing is downloaded; a 3-stage ResNet is built from a config and
trained on augmented copies of the training images (convolutions and augmentation are what let a
model learn from a few hundred images; a ViT from scratch needs far more). Setting
`model.pretrained` (e.g. `google/vit-base-patch16-224`, or a local checkpoint folder) loads that
image processor and model instead, and `data.source` points at an image folder with one
sub-folder per class, or `hf:<dataset>`.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from pydantic import Field

from .. import classification
from ..classification import compute_metrics, label_config, postprocess, report, with_labels
from ..errors import FlywheelError
from ..schema import DataSource, Section

INPUT_KIND = "image"
ACCEPTED_INPUT = "a PNG, JPEG or other image file"
TARGET = "class"
WHY_NO_ONNX = None  # `export` writes its ONNX graph
REQUIREMENTS = ("pillow",)
REPORT_FILES = classification.REPORT_FILES
from_hub = classification.from_hub
# The classical baseline sees each image as this many grey pixels a side.
BASELINE_PIXELS = 16
JUDGING = classification.judging(
    f"logistic regression on {BASELINE_PIXELS}x{BASELINE_PIXELS} grey pixels"
)

__all__ = ["compute_metrics", "postprocess", "report"]


class DataParams(DataSource):
    # Random crops, small rotations and colour changes of the training images, new every epoch.
    augment: bool
    # Mirrored training images too: only where a mirrored image keeps its class (not for text).
    horizontal_flip: bool


class ModelParams(Section):
    # A Hugging Face checkpoint id or a local folder; null builds the tiny model below from scratch.
    pretrained: str | None
    image_size: int = Field(ge=8)
    # Channels and residual blocks of each ResNet stage (each stage after the first halves the
    # resolution).
    hidden_sizes: list[int] = Field(min_length=1)
    depths: list[int] = Field(min_length=1)


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
    """An image folder: `source/<class name>/<image file>`, each file checked as it is read."""
    from datasets import ClassLabel, Dataset, Features, Image
    from PIL import Image as PILImage

    readable = {
        ext for ext, kind in PILImage.registered_extensions().items() if kind in PILImage.OPEN
    }
    files, classes = classification.class_folder_files(source, readable, "image")
    names = sorted(set(classes))
    images = []
    for path in files:
        raw = path.read_bytes()
        decode_input(raw, name=f"data.source: {path}")  # fails here, not in the middle of `train`
        # The prepared Parquet holds the image bytes, not paths into the source folder.
        images.append({"bytes": raw, "path": None})
    features = Features(
        {params.data.input_column: Image(), params.data.target_column: ClassLabel(names=names)}
    )
    return Dataset.from_dict(
        {
            params.data.input_column: images,
            params.data.target_column: [names.index(name) for name in classes],
        },
        features=features,
    )


def _grey_pixels(images: list[Any]) -> Any:
    import numpy as np
    from PIL import Image

    size = (BASELINE_PIXELS, BASELINE_PIXELS)
    return np.stack(
        [
            np.asarray(
                image.convert("L").resize(size, Image.Resampling.BILINEAR), np.float32
            ).ravel()
            / 255
            for image in images
        ]
    )


def baselines(train: Any, test: Any) -> dict[str, dict[str, float]]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    classical = make_pipeline(
        FunctionTransformer(_grey_pixels),
        StandardScaler(),
        LogisticRegression(C=0.1, max_iter=2000),
    )
    return classification.baselines(train, test, classical)


def build(params: Any, train: Any, labels: list[str]):
    """Image processor and model: from `model.pretrained`, or configured from scratch."""
    from transformers import (
        AutoImageProcessor,
        AutoModelForImageClassification,
        ResNetForImageClassification,
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
    config = classification.resnet_config(spec, 3, labels)
    return processor, ResNetForImageClassification(config)


def load(model_dir: Path):
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    processor = AutoImageProcessor.from_pretrained(model_dir)
    return processor, AutoModelForImageClassification.from_pretrained(model_dir)


def preprocess(processor: Any, inputs: list[Any]) -> dict[str, Any]:
    """Images to pixel values: the one function training, `predict` and `serve` all use."""
    return processor(images=[image.convert("RGB") for image in inputs])


def augmentation(params: Any):
    """A function that returns randomly altered copies of training images (None: no changes).

    Drawn from a generator seeded with `seed`, so the same run makes the same copies."""
    import numpy as np
    from PIL import Image, ImageEnhance

    if not params.data.augment:
        return None
    rng = np.random.default_rng(params.seed)

    def alter(image: Any) -> Any:
        image = image.convert("RGB")
        width, height = image.size
        background = image.getpixel((0, 0))
        image = image.rotate(
            rng.uniform(-10, 10), resample=Image.Resampling.BILINEAR, fillcolor=background
        )
        scale = rng.uniform(0.8, 1.0)
        crop_w, crop_h = max(1, round(width * scale)), max(1, round(height * scale))
        left = rng.integers(0, width - crop_w + 1)
        top = rng.integers(0, height - crop_h + 1)
        image = image.crop((left, top, left + crop_w, top + crop_h))
        image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.8, 1.2))
        image = ImageEnhance.Contrast(image).enhance(rng.uniform(0.8, 1.2))
        if params.data.horizontal_flip and rng.random() < 0.5:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return image

    return lambda images: [alter(image) for image in images]


def training_features(processor: Any):
    return with_labels(preprocess, processor)


def collator(processor: Any):
    from transformers import DefaultDataCollator

    return DefaultDataCollator()


def decode_input(raw: Any, name: str = "input"):
    """An uploaded or stored file's bytes (or an already decoded image) to a PIL image.

    `name` (the field or the file) starts the one-line error an undecodable file raises."""
    from PIL import Image, UnidentifiedImageError

    if not isinstance(raw, bytes | bytearray):
        return raw
    if not raw:
        problem = "it is empty"
    else:
        try:
            with Image.open(io.BytesIO(raw)) as image:
                image.load()
                return image.copy()
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
            # PIL names the in-memory buffer: keep only its reason.
            problem = str(error).split(" <_io.BytesIO")[0].rstrip(":")
    raise FlywheelError(
        f"{name}: the file cannot be decoded as an image ({problem}): "
        "send or store PNG, JPEG, GIF or WebP"
    )


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
