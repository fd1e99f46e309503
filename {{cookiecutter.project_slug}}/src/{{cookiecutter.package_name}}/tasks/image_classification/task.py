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
from typing import Any, Final

from pydantic import Field

from ...core.errors import FlywheelError
from ...core.schema import DataSource, Section
from ...serving import inputs
from .. import classification
from ..classification import label_config, with_labels
from ..contract import (
    alters_batches,
    files_of,
    forward_pass,
    no_router,
    nothing_skipped,
    predictions_as_they_are,
)

INPUT_KIND: Final = "image"
INPUTS = inputs.Files(INPUT_KIND)
# The files /predict takes (Pillow decodes more; these are the ones the schema promises).
MEDIA_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
# One call of the model answers a batch; no endpoints beyond /predict; logits kept whole.
run_model = forward_pass
api_router = no_router
skipped_characters = nothing_skipped
input_schema = files_of(*MEDIA_TYPES)
reduce_logits = None
ACCEPTED_INPUT = "a PNG, JPEG or other image file"
TARGET: Final = "class"
WHY_NO_ONNX = None  # `export` writes its ONNX graph
EXPORT_FORMAT: Final = "onnx"
REQUIREMENTS = ("pillow",)
REPORT_FILES = classification.REPORT_FILES
# Drift monitoring: what it reads of a prediction and of a true label (of an input: below).
output_features = classification.output_features
agreement = classification.agreement
prepare_labels = classification.prepare_labels
# `predict` prints its predictions as they are (no files to write).
PREDICTIONS_OUT = None
write_predictions = predictions_as_they_are
target_features = classification.target_features
from_hub = classification.from_hub
# The classical baseline sees each image as this many grey pixels a side.
BASELINE_PIXELS = 16
JUDGING = classification.judging(
    f"logistic regression on {BASELINE_PIXELS}x{BASELINE_PIXELS} grey pixels"
)

# The classifiers' shared metrics, outputs and report.
compute_metrics = classification.compute_metrics
postprocess = classification.postprocess
report = classification.report


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


def baselines(train: Any, test: Any, params: Any) -> dict[str, dict[str, float]]:
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
    import transformers
    from transformers import (
        AutoImageProcessor,
        AutoModelForImageClassification,
        ResNetForImageClassification,
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
    # Pillow's image processor: the default one needs torchvision, and without it warns at
    # import that it falls back to this one (transformers before 5.x's backends has only one).
    vit_processor = getattr(transformers, "ViTImageProcessorPil", None)
    processor = (vit_processor or transformers.ViTImageProcessor)(
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
    """A function that alters a batch of training images (None: no changes): a random rotation
    (up to 10 degrees), a crop of 80-100% of each side, contrast and brightness (up to 20%), and a
    mirror image if `data.horizontal_flip`, new for every batch.

    It works on the collated pixel values, a few tensor operations for the whole batch: the same
    changes made image by image with Pillow before the image processor took a fifth of a CPU
    run. Drawn from a generator seeded with `seed`, so the same run makes the same copies."""
    import math

    import torch
    import torch.nn.functional as F

    if not params.data.augment:
        return None
    generator = torch.Generator().manual_seed(params.seed)
    flip = params.data.horizontal_flip

    def uniform(size: int, low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(size, generator=generator)

    @alters_batches
    def alter(batch: dict[str, Any]) -> dict[str, Any]:
        pixels = batch["pixel_values"]
        n = pixels.shape[0]
        angle = uniform(n, -10, 10) * math.pi / 180
        scale = uniform(n, 0.8, 1.0)  # the crop's side: the model sees it at full size
        # The crop lies anywhere inside the image: its centre moves at most the margin left.
        shift_x, shift_y = uniform(n, -1, 1) * (1 - scale), uniform(n, -1, 1) * (1 - scale)
        cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
        mirror = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0) if flip else 1.0
        theta = torch.stack(
            [
                torch.stack([cos * mirror, -sin, shift_x], dim=1),
                torch.stack([sin * mirror, cos, shift_y], dim=1),
            ],
            dim=1,
        )
        grid = F.affine_grid(theta, list(pixels.shape), align_corners=False)
        # Corners uncovered by a rotation repeat the edge: the background, in most pictures.
        altered = F.grid_sample(pixels, grid, padding_mode="border", align_corners=False)
        # Contrast around each image's mean and brightness in units of its spread: both mean the
        # same whatever normalisation the image processor applied.
        mean = altered.mean(dim=(1, 2, 3), keepdim=True)
        spread = altered.std(dim=(1, 2, 3), keepdim=True)
        contrast = uniform(n, 0.8, 1.2).view(n, 1, 1, 1)
        brightness = uniform(n, -0.2, 0.2).view(n, 1, 1, 1)
        return {**batch, "pixel_values": mean + contrast * (altered - mean) + brightness * spread}

    alter.generator = generator  # type: ignore[attr-defined]  # checkpointed with the run, so a resumed run alters the same way
    return alter


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


def input_features(processor: Any) -> Any:
    """What drift monitoring reads of a decoded image: its size, brightness and contrast."""
    import numpy as np

    def features(decoded: Any) -> dict[str, float]:
        grey = np.asarray(decoded.convert("L"), dtype=np.float32)
        return {
            "width": float(decoded.width),
            "height": float(decoded.height),
            "brightness": float(grey.mean()),
            "contrast": float(grey.std()),
        }

    return features
