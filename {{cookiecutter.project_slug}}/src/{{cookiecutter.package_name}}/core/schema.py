"""Bases of the params.yaml sections: unknown keys are errors, values are checked on load."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field


class Section(BaseModel):
    """Fields have no defaults on purpose: params.yaml is the one place values live."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSource(Section):
    """Where the data comes from and how it is split; every task's `data` section extends it."""

    # "embedded" (made offline by `prepare`), a local file or folder, or "hf:<dataset id>".
    source: str
    # Column names in a local file or hub dataset (the embedded data needs none).
    input_column: str
    target_column: str
    validation_fraction: float = Field(gt=0, lt=0.5)
    test_fraction: float = Field(gt=0, lt=0.5)
    # Keep at most this many examples (after shuffling); null keeps all.
    max_samples: int | None = Field(ge=10)


@dataclass(frozen=True)
class Judging:
    """How a task's models are judged, declared once per task (`task.JUDGING`) and read by
    training, evaluation, the baselines and the gate."""

    # The test metric people read first, and whether higher is better.
    primary_metric: str
    greater_is_better: bool
    # The validation score that picks the best epoch and stops training early: "loss" or the
    # primary metric.
    selection_metric: str
    # Every baseline's name with what it is; the model must beat `baseline_to_beat`.
    baselines: dict[str, str]
    baseline_to_beat: str
    # What the warning suggests when the model does not beat that baseline.
    improvement_hint: str

    @property
    def perfect_score(self) -> float:
        """The primary metric's best value (accuracy 1, error rate 0): training stops there."""
        return 1.0 if self.greater_is_better else 0.0
