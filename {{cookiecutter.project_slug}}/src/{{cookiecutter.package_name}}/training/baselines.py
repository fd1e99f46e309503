"""Baselines: what the model must beat, scored on the same test split as the model.

A constant baseline (the most frequent class or transcript) says what guessing earns; a classical
model (scikit-learn, fitted on the train split in a second or two) says what simple features
earn. A model that does not beat them on its primary metric is not worth serving: `train` and
`evaluate` say so in one line, and `gate` can require a margin. See docs/decisions.md.
"""

from __future__ import annotations

from typing import Any

from ..tasks import task


def score_baselines(train: Any, test: Any, params: Any) -> dict[str, dict[str, float]]:
    """Each baseline's test metrics: `{name: {metric: value}}`, rounded like the model's."""
    scores = task.baselines(train, test, params)
    return {
        name: {metric: round(float(value), 6) for metric, value in sorted(metrics.items())}
        for name, metrics in scores.items()
    }


def flat(baselines: dict[str, dict[str, float]]) -> dict[str, float]:
    """`baseline_<name>_<metric>` keys, as MLflow logs them."""
    return {
        f"baseline_{name}_{metric}": value
        for name, metrics in baselines.items()
        for metric, value in metrics.items()
    }


def margin(metrics: dict[str, Any]) -> float:
    """How far the model is ahead of the baseline it must beat on the primary metric (positive:
    ahead), whichever direction the metric improves in."""
    model = metrics[task.JUDGING.primary_metric]
    baseline = metrics["baselines"][task.JUDGING.baseline_to_beat][task.JUDGING.primary_metric]
    return round(model - baseline if task.JUDGING.greater_is_better else baseline - model, 6)


def shortfall(metrics: dict[str, Any]) -> str | None:
    """One warning line when the model does not beat its baseline; None when it does."""
    if "baselines" not in metrics or margin(metrics) > 0:
        return None
    name, metric = task.JUDGING.baseline_to_beat, task.JUDGING.primary_metric
    return (
        f"the model's test {metric} ({metrics[metric]}) does not beat the {name} baseline "
        f"({task.JUDGING.baselines[name]}: {metrics['baselines'][name][metric]}): "
        f"try {task.JUDGING.improvement_hint}"
    )
