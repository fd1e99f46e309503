"""`gate`: stop a model that is too slow, too big or no better than a baseline, before it
reaches production.

Compares bench.json (from `bench`) with the budgets in params.yaml, and, when
`budgets.min_margin_over_baseline` is set, metrics.json (from `evaluate`) with the baseline the
model must beat; every measurement outside its budget is named with its value and its budget.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.config import LOAD_CONCURRENCY
from ..core.errors import FlywheelError
from ..core.paths import BENCH_FILE, METRICS_FILE
from ..tasks import task
from ..training.baselines import margin

if TYPE_CHECKING:  # the settings' schema loads the task: only the type is needed here
    from ..core.config import Params


@dataclass(frozen=True)
class Verdict:
    metric: str
    value: float
    budget: float
    budget_key: str
    # A budget is a ceiling (latency, size) or, for margins, a floor.
    at_least: bool = False

    @property
    def passed(self) -> bool:
        return self.value >= self.budget if self.at_least else self.value <= self.budget

    @property
    def failure(self) -> str:
        limit = "under its minimum" if self.at_least else "over its budget"
        return f"{self.metric} is {self.value}, {limit} of {self.budget}"

    def __str__(self) -> str:
        mark = "ok   " if self.passed else ("UNDER" if self.at_least else "OVER ")
        return f"{mark} {self.metric}: {self.value} (budget {self.budget}, {self.budget_key})"


def verdicts(results: dict[str, Any], params: Params) -> list[Verdict]:
    return [*_fixed_verdicts(results, params), *_load_verdicts(results, params)]


def _load_verdicts(results: dict[str, Any], params: Params) -> list[Verdict]:
    budgets = params.budgets
    if budgets.min_requests_per_second is None and budgets.max_p99_latency_ms is None:
        return []
    load = results["http_load"][str(LOAD_CONCURRENCY)]
    checked = [
        Verdict(
            f"HTTP errors at {LOAD_CONCURRENCY} clients",
            load["errors"],
            0,
            "budgets.min_requests_per_second / max_p99_latency_ms (a load run without errors)",
        )
    ]
    if budgets.min_requests_per_second is not None:
        checked.append(
            Verdict(
                f"HTTP requests/s at {LOAD_CONCURRENCY} clients",
                load["requests_per_second"],
                budgets.min_requests_per_second,
                "budgets.min_requests_per_second",
                at_least=True,
            )
        )
    if budgets.max_p99_latency_ms is not None:
        checked.append(
            Verdict(
                f"HTTP p99 latency at {LOAD_CONCURRENCY} clients (ms)",
                load["p99"],
                budgets.max_p99_latency_ms,
                "budgets.max_p99_latency_ms",
            )
        )
    return checked


def _fixed_verdicts(results: dict[str, Any], params: Params) -> list[Verdict]:
    budgets = params.budgets
    return [
        Verdict(
            "HTTP p95 latency (ms)",
            results["http_latency_ms"]["single"]["p95"],
            budgets.max_p95_latency_ms,
            "budgets.max_p95_latency_ms",
        ),
        Verdict(
            "model size (MB)",
            results["model_size_mb"],
            budgets.max_model_size_mb,
            "budgets.max_model_size_mb",
        ),
        Verdict(
            "peak memory (MB)",
            results["peak_memory_mb"],
            budgets.max_peak_memory_mb,
            "budgets.max_peak_memory_mb",
        ),
    ]


def baseline_verdict(metrics: dict[str, Any], minimum: float) -> Verdict:
    return Verdict(
        f"{task.JUDGING.primary_metric} margin over the {task.JUDGING.baseline_to_beat} baseline",
        margin(metrics),
        minimum,
        "budgets.min_margin_over_baseline",
        at_least=True,
    )


def read_json(path: Path, verb: str) -> dict[str, Any]:
    if not path.is_file():
        raise FlywheelError(f"{path} not found: run `{verb}` first")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        raise FlywheelError(f"{path}: not valid JSON: run `{verb}` again") from None


def gate(
    params: Params, path: Path = BENCH_FILE, metrics_path: Path = METRICS_FILE
) -> list[Verdict]:
    """Every verdict; raises naming the first measurement outside its budget."""
    results = read_json(path, "bench")
    try:
        checked = verdicts(results, params)
    except (KeyError, TypeError):
        raise FlywheelError(f"{path}: missing measurements: run `bench` again") from None
    minimum = params.budgets.min_margin_over_baseline
    if minimum is not None:
        try:
            checked.append(baseline_verdict(read_json(metrics_path, "evaluate"), minimum))
        except (KeyError, TypeError):
            raise FlywheelError(
                f"{metrics_path}: no baseline scores: run `evaluate` again"
            ) from None
    failed = [verdict for verdict in checked if not verdict.passed]
    if failed:
        first = failed[0]
        raise FlywheelError(
            f"gate failed: {first.failure} ({first.budget_key} in params.yaml)"
            + (f"; {len(failed) - 1} more outside budget" if len(failed) > 1 else "")
        )
    return checked
