"""What the classification tasks share: metrics, baselines, predictions and the confusion matrix."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import FlywheelError
from ..core.schema import Judging
from ..training import plots


def judging(classical: str) -> Judging:
    """How every classifier is judged; `classical` describes the task's classical baseline."""
    return Judging(
        primary_metric="accuracy",
        greater_is_better=True,
        selection_metric="accuracy",
        baselines={"majority": "always the most frequent class", "classical": classical},
        baseline_to_beat="classical",
        improvement_hint="model.pretrained (a checkpoint of your modality), more examples per "
        "class, or a longer train.epochs budget",
    )


def class_folder_files(
    source: Path, extensions: set[str], kind: str
) -> tuple[list[Path], list[str]]:
    """The files of a `source/<class>/<file>` folder with one of `extensions`, and their classes.

    Hidden files and folders (`.DS_Store`, `._photo.png`, `.git/`) are skipped."""
    if not source.is_dir():
        raise FlywheelError(
            f"data.source: {source} is not a folder: use one sub-folder of {kind} files per class"
        )
    files = sorted(
        path
        for path in source.rglob("*")
        if path.suffix.lower() in extensions
        and path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(source).parts)
    )
    loose = [path for path in files if path.parent == source]
    if loose:
        raise FlywheelError(
            f"data.source: {loose[0]} is not in a class sub-folder: move each file into "
            f"{source}/<class name>/"
        )
    if not files:
        raise FlywheelError(
            f"data.source: {source} holds no {kind} files: "
            f"use one sub-folder of {kind} files per class"
        )
    return files, [path.relative_to(source).parts[0] for path in files]


def resnet_config(model: Any, num_channels: int, labels: list[str]) -> Any:
    """A small ResNet's config from `model.hidden_sizes` and `model.depths` (one stage each)."""
    from transformers import ResNetConfig

    if len(model.hidden_sizes) != len(model.depths):
        raise FlywheelError(
            "model.depths: give one depth per entry of model.hidden_sizes "
            f"({len(model.depths)} depths, {len(model.hidden_sizes)} sizes)"
        )
    return ResNetConfig(
        num_channels=num_channels,
        embedding_size=model.hidden_sizes[0],
        hidden_sizes=model.hidden_sizes,
        depths=model.depths,
        layer_type="basic",
        downsample_in_first_stage=False,
        **label_config(labels),
    )


def label_config(labels: Sequence[str]) -> dict[str, Any]:
    """`num_labels`, `id2label` and `label2id`, as classification configs and models take them."""
    return {
        "num_labels": len(labels),
        "id2label": dict(enumerate(labels)),
        "label2id": {label: index for index, label in enumerate(labels)},
    }


def with_labels(preprocess: Callable[[Any, list], dict[str, Any]], processor: Any):
    """A batch transform: a task's `preprocess` on the inputs, plus the class ids as `labels`."""

    def transform(batch: dict[str, list]) -> dict[str, Any]:
        return {**preprocess(processor, batch["input"]), "labels": batch["label"]}

    return transform


def scores(actual: Any, predicted: Any) -> dict[str, float]:
    """Accuracy and macro-F1 (scikit-learn: no download needed), for models and baselines alike."""
    from sklearn.metrics import accuracy_score, f1_score

    return {
        "accuracy": float(accuracy_score(actual, predicted)),
        "f1_macro": float(f1_score(actual, predicted, average="macro")),
    }


def compute_metrics(processor: Any) -> Callable[[Any], dict[str, float]]:
    """Accuracy and macro-F1 from a Trainer's predictions."""

    def metrics(prediction: Any) -> dict[str, float]:
        predicted = np.asarray(prediction.predictions).argmax(-1)
        return scores(np.asarray(prediction.label_ids), predicted)

    return metrics


# The baselines fit on at most this many training rows (a sample beyond it, with a fixed seed so
# that a run's baseline does not move with `seed`): a classical model learns what it can from
# them, and its memory stops growing with the data.
BASELINE_ROWS = 100_000
# Test rows predicted at a time: the features of a whole test split (TF-IDF, pixels) would grow
# with it.
PREDICT_ROWS = 10_000


def baselines(train: Any, test: Any, classical: Any) -> dict[str, dict[str, float]]:
    """The majority class and a classical scikit-learn model (fitted on `train`, or a seeded
    sample of BASELINE_ROWS of it), on `test`."""
    from sklearn.dummy import DummyClassifier

    if len(train) > BASELINE_ROWS:
        train = train.shuffle(seed=0).select(range(BASELINE_ROWS))
    estimators = {"majority": DummyClassifier(strategy="most_frequent"), "classical": classical}
    fitted = {
        name: estimator.fit(train["input"], train["label"])
        for name, estimator in estimators.items()
    }
    return {
        name: scores(
            test["label"],
            np.concatenate(
                [model.predict(batch["input"]) for batch in test.iter(batch_size=PREDICT_ROWS)]
            ),
        )
        for name, model in fitted.items()
    }


def postprocess(processor: Any, model: Any, outputs: Any) -> list[dict[str, Any]]:
    """The most likely label of each input with its probability."""
    probabilities = outputs.logits.softmax(-1)
    scores, ids = probabilities.max(-1)
    return [
        {"label": model.config.id2label[int(index)], "score": round(float(score), 6)}
        for score, index in zip(scores, ids, strict=True)
    ]


# What `report` writes into the evaluation plots folder.
REPORT_FILES = ("confusion_matrix.png", "predictions.csv")


def from_hub(dataset: Any, params: Any) -> Any:
    """Hub text and image columns need no conversion."""
    return dataset


def report(
    processor: Any, model: Any, prediction: Any, test: Any, plots_dir: Path
) -> dict[str, float]:
    """Test-split metrics, plus the confusion matrix a person reads at a glance."""
    metrics = compute_metrics(processor)(prediction)
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    predicted = np.asarray(prediction.predictions).argmax(-1).tolist()
    plots.confusion_matrix(labels, np.asarray(prediction.label_ids).tolist(), predicted, plots_dir)
    return metrics


def output_features(prediction: dict[str, Any]) -> dict[str, Any]:
    """What drift monitoring keeps of a prediction: its label."""
    return {"label": prediction["label"]}


def agreement(champion: dict[str, Any], candidate: dict[str, Any]) -> float:
    """Shadow replay: 1 where both models give the input the same label, else 0."""
    return float(champion["label"] == candidate["label"])


def target_features(split: Any) -> Callable[[Any], dict[str, Any]]:
    """The same for a split's true labels (class ids, named by the split's features)."""
    names = list(split.features["label"].names)
    return lambda label: {"label": names[label]}


def prepare_labels(dataset: Any) -> tuple[Any, str | None]:
    """Class names as ids (a CSV's label column is text), and splits stratified by class."""
    from datasets import ClassLabel

    if not isinstance(dataset.features["label"], ClassLabel):
        dataset = dataset.class_encode_column("label")
    return dataset, "label"
