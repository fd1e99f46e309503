"""params.yaml, loaded into typed, validated settings: the single source of a run's configuration.

DVC reads the same file as the pipeline's params. A wrong key or a wrong type fails at start with
the key's name and what it accepts.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError

from .errors import FlywheelError
from .schema import Section
from .tasks import task

PARAMS_FILE = Path("params.yaml")
# Where each step leaves its outputs, relative to the project root.
PREPARED_DIR = Path("data/prepared")
EXAMPLES_DIR = Path("data/examples")
MODEL_DIR = Path("models/model")
# `export` writes the ONNX graph of models/model here (export.py).
ONNX_DIR = Path("models/onnx")
METRICS_FILE = Path("metrics.json")
BENCH_FILE = Path("bench.json")
# Where `predict` writes what it synthesizes (text to speech).
PREDICTIONS_DIR = Path("predictions")
# Concurrent clients of `bench`'s load run (besides one client alone), which `gate` judges.
LOAD_CONCURRENCY = 32
# Held while `prepare`, `train` or `evaluate` runs (runlock.py).
LOCK_FILE = Path(".flywheel.lock")
# `train` draws the loss curve, `evaluate` the test-split plots: one folder per DVC stage.
TRAIN_PLOTS_DIR = Path("plots/train")
EVALUATE_PLOTS_DIR = Path("plots/evaluate")


class TrainParams(Section):
    epochs: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    learning_rate: float = Field(gt=0)
    weight_decay: float = Field(ge=0)
    warmup_ratio: float = Field(ge=0, lt=1)
    # Epochs without a better validation score before training stops (the best epoch's model is
    # kept either way); null: train every epoch.
    early_stopping_patience: int | None = Field(ge=1)
    # CUDA only; ignored (with a log line) on a CPU. See device.py.
    mixed_precision: bool
    tf32: bool
    compile: bool


class Budgets(Section):
    """What `gate` allows `bench` to measure."""

    max_p95_latency_ms: float = Field(gt=0)
    max_model_size_mb: float = Field(gt=0)
    max_peak_memory_mb: float = Field(gt=0)
    # The server under `bench`'s 32 concurrent clients; null: not checked.
    min_requests_per_second: float | None = Field(gt=0)
    max_p99_latency_ms: float | None = Field(gt=0)
    # How far the model must lead its baseline on the primary metric (0 lets a tie pass; the
    # warning of `train` and `evaluate` already flags a tie); null: not checked.
    min_margin_over_baseline: float | None


class ServeParams(Section):
    """How `serve` batches concurrent requests (batching.py)."""

    # At most this many inputs in one model call...
    max_batch_size: int = Field(ge=1)
    # ...gathered for at most this long after the first one arrives.
    max_wait_ms: float = Field(ge=0)
    # Inputs waiting beyond this answer 503 (with Retry-After) instead of queueing without bound.
    max_queue: int = Field(ge=1)
    # The model call: PyTorch, or the ONNX graph `export` wrote, run by onnxruntime. A default, so
    # a params.yaml from before the switch still loads.
    runtime: Literal["torch", "onnx"] = "torch"


class Params(Section):
    seed: int
    data: task.DataParams
    model: task.ModelParams
    train: TrainParams
    serve: ServeParams
    budgets: Budgets

    def flat(self) -> dict[str, Any]:
        """`section.key` pairs, as MLflow logs them and DVC names them."""
        return dict(_flatten(self.model_dump(mode="json")))


def _flatten(tree: dict[str, Any], prefix: str = ""):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _describe(error: dict[str, Any]) -> str:
    location = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        parent: type[BaseModel] = Params
        for part in error["loc"][:-1]:
            parent = parent.model_fields[str(part)].annotation  # type: ignore[assignment]
        allowed = list(parent.model_fields)
        close = difflib.get_close_matches(str(error["loc"][-1]), allowed, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        return f"{location}: unknown key; {hint}allowed keys here: {', '.join(allowed)}"
    return f"{location}: {error['msg']} (got {error.get('input')!r})"


def load_params(path: Path = PARAMS_FILE) -> Params:
    if not path.is_file():
        raise FlywheelError(f"{path} not found: run from the project root or pass --params PATH")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise FlywheelError(f"{path}: not valid YAML{where}: fix the syntax") from None
    if not isinstance(raw, dict):
        raise FlywheelError(f"{path}: expected a mapping of sections (data, model, train, ...)")
    try:
        return Params.model_validate(raw)
    except ValidationError as error:
        # A misspelled key also makes the right one missing: name the misspelling first.
        errors = sorted(error.errors(), key=lambda e: e["type"] != "extra_forbidden")
        raise FlywheelError(f"{path}: {_describe(errors[0])}") from None
