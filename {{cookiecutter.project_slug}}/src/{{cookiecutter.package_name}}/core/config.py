"""params.yaml, loaded into typed, validated settings: the single source of a run's configuration.

DVC reads the same file as the pipeline's params. A wrong key or a wrong type fails at start with
the key's name and what it accepts.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from ..tasks import DataParams, ModelParams, task
from .errors import FlywheelError
from .paths import PARAMS_FILE
from .schema import Section

# Concurrent clients of `bench`'s load run (besides one client alone), which `gate` judges.
LOAD_CONCURRENCY = 32


class TrainParams(Section):
    epochs: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    learning_rate: float = Field(gt=0)
    weight_decay: float = Field(ge=0)
    warmup_ratio: float = Field(ge=0, lt=1)
    # Epochs without a better validation score before training stops (the best epoch's model is
    # kept either way); null: train every epoch.
    early_stopping_patience: int | None = Field(ge=1)
    # At most this many optimizer steps, the last epoch cut short (null: every epoch). A default,
    # so a params.yaml from before the cap still loads.
    max_steps: int | None = Field(default=None, ge=1)
    # CUDA only; ignored (with a log line) on a CPU. See device.py.
    mixed_precision: bool
    tf32: bool
    compile: bool
    # auto: after an interruption, continue from the newest complete checkpoint (the same final
    # model and metrics as an uninterrupted run); never: always start over. A default, so a
    # params.yaml from before resuming still loads.
    resume: Literal["auto", "never"] = "auto"


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
    # Who answers: this project's server, or vLLM's OpenAI server on the checkpoint `export`
    # wrote (text generation, on a CUDA machine with vLLM installed; vllm_server.py).
    engine: Literal["torch", "vllm"] = "torch"

    @field_validator("engine")
    @classmethod
    def _vllm_serves_checkpoints(cls, engine: str) -> str:
        if engine == "vllm" and task.EXPORT_FORMAT != "safetensors":
            raise ValueError("vllm serves text generation only; use torch")
        return engine


class MonitorParams(Section):
    """What `serve` records and when `monitor` calls it drift (monitor.py). Defaults, so a
    params.yaml from before monitoring still loads."""

    # `serve` appends a summary of each answered input and its prediction to monitoring/.
    record: bool = True
    # ...and, where true, the input itself (text, or the file as base64) with the prediction, in
    # monitoring/inputs*.jsonl, which `shadow` replays; lines older than keep_inputs_days are
    # never read and their files are deleted (the file limits above bound them too).
    keep_inputs: bool = False
    keep_inputs_days: float = Field(default=30, gt=0)
    # Lines per file before it is rotated, and files kept (the oldest beyond is deleted).
    max_records_per_file: int = Field(default=10_000, ge=10)
    max_files: int = Field(default=5, ge=1)
    # `monitor` needs at least this many recorded requests to judge.
    min_records: int = Field(default=30, ge=1)
    # Drift: a feature's Kolmogorov-Smirnov statistic above this (and significant at 1%), or the
    # predicted labels' total variation distance from the training labels above this.
    max_feature_shift: float = Field(default=0.3, gt=0, le=1)
    max_label_shift: float = Field(default=0.3, gt=0, le=1)
    # What a million prompt and completion tokens cost you (any currency): `monitor` reports the
    # cost of the recorded generations (text generation); null: not reported.
    prompt_token_price: float | None = Field(default=None, ge=0)
    completion_token_price: float | None = Field(default=None, ge=0)


class RegistryParams(Section):
    """When `promote` moves the registry's `champion` alias (registry.py). Defaults, so a
    params.yaml from before the registry still loads."""

    # How far a candidate's primary test metric must beat the champion's (a tie never does).
    min_improvement: float = Field(default=0.0, ge=0)
    # Promote only a run whose model passed `shadow` against the current champion.
    require_shadow: bool = False


class ShadowParams(Section):
    """What `shadow` replays and the budgets the candidate must meet (shadow.py). Defaults, so a
    params.yaml from before it still loads."""

    # Kept inputs replayed (a seeded sample of those within monitor.keep_inputs_days).
    sample_size: int = Field(default=200, ge=1)
    # The candidate's mean agreement with the champion's answers (the task's measure, 0 to 1).
    min_agreement: float = Field(default=0.8, ge=0, le=1)
    # The candidate's p95 latency and peak memory, as multiples of the champion's.
    max_latency_ratio: float = Field(default=1.5, gt=0)
    max_memory_ratio: float = Field(default=1.5, gt=0)


class HarvestParams(Section):
    """Which kept inputs `harvest` exports for labelling (harvest.py). Defaults, so a params.yaml
    from before it still loads."""

    # uncertain: those the model gave the lowest scores (classifiers); random: a seeded sample.
    strategy: Literal["uncertain", "random"] = "random"
    count: int = Field(default=100, ge=1)


class SearchRange(Section):
    """One parameter's search space: `choices`, or a range from `low` to `high` (on a log scale
    where `log`), of integers where params.yaml's value is one."""

    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list[Any] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_kind(self) -> SearchRange:
        if (self.choices is None) == (self.low is None or self.high is None):
            raise ValueError("give either choices: [...] or both low and high")
        return self


class TuneParams(Section):
    """What `tune` searches (tune.py). Defaults, so a params.yaml from before it still loads."""

    # Trials in the study, the ones an interrupted run finished included.
    trials: int = Field(default=20, ge=1)
    # `section.key` of params.yaml -> its range or choices.
    search_space: dict[str, SearchRange] = Field(default_factory=dict)
    # Where the study lives: null, tuning/study.db (one worker); a database URL Optuna accepts,
    # for workers on several machines sharing one study.
    storage: str | None = None
    # A worker on a shared study beats this often; one silent for 3 beats is lost: its trial is
    # failed, and owed to the study again.
    heartbeat_seconds: int = Field(default=10, ge=1)


class Params(Section):
    seed: int
    data: DataParams
    model: ModelParams
    train: TrainParams
    serve: ServeParams
    budgets: Budgets
    monitor: MonitorParams = MonitorParams()
    registry: RegistryParams = RegistryParams()
    tune: TuneParams = TuneParams()
    shadow: ShadowParams = ShadowParams()
    harvest: HarvestParams = HarvestParams()

    def flat(self) -> dict[str, Any]:
        """`section.key` pairs, as MLflow logs them and DVC names them; the sections of the
        verbs that come after a run (`promote`, `tune`) are not the run's parameters."""
        return dict(_flatten(self.model_dump(mode="json", exclude=set(AFTER_THE_RUN))))

    def fingerprinted(self) -> dict[str, Any]:
        """`flat()` less the keys added after a release while they hold the default that does
        what that release did: a checkpoint or a tuning study made before `copier update`
        brought the key still resumes after it."""
        return {
            key: value
            for key, value in self.flat().items()
            if key not in ADDED_SINCE_A_RELEASE or ADDED_SINCE_A_RELEASE[key] != value
        }


AFTER_THE_RUN = ("monitor", "registry", "tune", "shadow", "harvest")
# Keys params.yaml gained after a release, with the default that keeps the release's behaviour.
ADDED_SINCE_A_RELEASE: dict[str, Any] = {"train.max_steps": None}


def _flatten(tree: dict[str, Any], prefix: str = ""):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _describe(error: Mapping[str, Any]) -> str:
    location = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        parent: Any = Params
        for part in error["loc"][:-1]:
            field = getattr(parent, "model_fields", {}).get(str(part))
            # Inside a mapping (tune.search_space): its values' model, if any.
            parent = field.annotation if field else getattr(parent, "__args__", (None,))[-1]
        allowed = list(getattr(parent, "model_fields", {}))
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
