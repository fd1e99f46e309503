"""What the classification tasks share: metrics, predictions and the confusion matrix."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import plots


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


def compute_metrics(processor: Any) -> Callable[[Any], dict[str, float]]:
    """Accuracy and macro-F1 from a Trainer's predictions (scikit-learn: no download needed)."""
    from sklearn.metrics import accuracy_score, f1_score

    def metrics(prediction: Any) -> dict[str, float]:
        predicted = np.asarray(prediction.predictions).argmax(-1)
        actual = np.asarray(prediction.label_ids)
        return {
            "accuracy": float(accuracy_score(actual, predicted)),
            "f1_macro": float(f1_score(actual, predicted, average="macro")),
        }

    return metrics


def postprocess(processor: Any, model: Any, outputs: Any) -> list[dict[str, Any]]:
    """The most likely label of each input with its probability."""
    probabilities = outputs.logits.softmax(-1)
    scores, ids = probabilities.max(-1)
    return [
        {"label": model.config.id2label[int(index)], "score": round(float(score), 6)}
        for score, index in zip(scores, ids, strict=True)
    ]


def report(processor: Any, model: Any, prediction: Any, plots_dir: Path) -> dict[str, float]:
    """Test-split metrics, plus the confusion matrix a person reads at a glance."""
    metrics = compute_metrics(processor)(prediction)
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    predicted = np.asarray(prediction.predictions).argmax(-1).tolist()
    plots.confusion_matrix(labels, np.asarray(prediction.label_ids).tolist(), predicted, plots_dir)
    return metrics
