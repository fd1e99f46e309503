"""`gate`: stop a model that is accurate but too slow or too big, before it reaches production.

Compares bench.json (from `bench`) with the budgets in params.yaml; every metric over its budget
is named with its value and its budget.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .bench import BENCH_FILE
from .config import Params
from .errors import FlywheelError


@dataclass(frozen=True)
class Verdict:
    metric: str
    value: float
    budget: float
    budget_key: str

    @property
    def passed(self) -> bool:
        return self.value <= self.budget

    def __str__(self) -> str:
        mark = "ok  " if self.passed else "OVER"
        return f"{mark} {self.metric}: {self.value} (budget {self.budget}, {self.budget_key})"


def verdicts(results: dict[str, Any], params: Params) -> list[Verdict]:
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


def read_bench(path: Path = BENCH_FILE) -> dict[str, Any]:
    if not path.is_file():
        raise FlywheelError(f"{path} not found: run `bench` first")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        raise FlywheelError(f"{path}: not valid JSON: run `bench` again") from None


def gate(params: Params, path: Path = BENCH_FILE) -> list[Verdict]:
    """Every verdict; raises naming the first metric over its budget."""
    results = read_bench(path)
    try:
        checked = verdicts(results, params)
    except (KeyError, TypeError):
        raise FlywheelError(f"{path}: missing measurements: run `bench` again") from None
    failed = [verdict for verdict in checked if not verdict.passed]
    if failed:
        first = failed[0]
        raise FlywheelError(
            f"gate failed: {first.metric} is {first.value}, over its budget of {first.budget} "
            f"({first.budget_key} in params.yaml)"
            + (f"; {len(failed) - 1} more over budget" if len(failed) > 1 else "")
        )
    return checked
