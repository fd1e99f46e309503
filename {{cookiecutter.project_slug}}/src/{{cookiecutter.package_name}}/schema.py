"""Bases of the params.yaml sections: unknown keys are errors, values are checked on load."""

from __future__ import annotations

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
