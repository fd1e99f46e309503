"""Shadow replay: the inputs `serve` kept, answered by the champion and by a candidate, compared
before the candidate may replace the champion.

`shadow` replays a seeded sample of the kept inputs (monitor.keep_inputs in params.yaml) through
both models, one input per call as requests arrive, one model after the other in this process
(each loaded, warmed up with one input, then timed). It writes shadow/shadow.json and
shadow/shadow.png: the candidate's agreement with the champion (the task's measure, 0 to 1), the
p50 and p95 latency and peak memory of each, and the candidate's ratios; a missed budget of
params.yaml's `shadow` section fails in one line. `promote` with `registry.require_shadow` reads
the report: it must name the same candidate and champion, and have passed.
"""

from __future__ import annotations

import contextlib
import gc
import json
import re
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import FlywheelError
from ..core.paths import MONITOR_DIR, SHADOW_DIR
from ..tasks import task

REPORT = "shadow.json"
PLOT = "shadow.png"
# An MLflow run id, as `make train` prints it and `promote --run` takes it.
RUN_ID = re.compile(r"[0-9a-f]{32}")


@dataclass
class Replay:
    """One model's answers to the sampled inputs, with what they cost."""

    model: str
    run_id: str
    checksum: str
    answers: list[dict[str, Any] | None] = field(default_factory=list)  # None: refused
    latencies_ms: list[float] = field(default_factory=list)
    peak_memory_mb: float | None = None

    def latency(self) -> dict[str, float]:
        p50, p95 = np.percentile(self.latencies_ms, [50, 95])
        return {"p50": round(float(p50), 3), "p95": round(float(p95), 3)}


def champion_uri() -> str:
    from .registry import CHAMPION, MODEL_NAME

    return f"models:/{MODEL_NAME}@{CHAMPION}"


def model_uri(model: str) -> str:
    """`model` as `model_folder` reads it: a run id becomes the URI of the model it logged."""
    if not RUN_ID.fullmatch(model) or Path(model).exists():
        return model
    from ..tracking.runs import get_run, project_client
    from .registry import logged_model_id

    client = project_client()
    return f"models:/{logged_model_id(client, get_run(model, client))}"


def sample(folder: Path, days: float, size: int, seed: int) -> list[dict[str, Any]]:
    """A seeded sample of the inputs kept in the last `days`, in the order they came."""
    from .monitor import KEEP_INPUTS_FIRST, kept_inputs, seeded_sample

    lines = kept_inputs(folder, days)
    if not lines:
        raise FlywheelError(
            f"{folder} holds no inputs kept in the last {days:g} days: {KEEP_INPUTS_FIRST}"
        )
    return seeded_sample(lines, size, seed)


def _memory_kb(name: str) -> int | None:
    """A /proc/self/status field (VmRSS, VmHWM) in kB; None where there is none (not Linux)."""
    try:
        status = Path("/proc/self/status").read_text(encoding="ascii")
    except OSError:
        return None
    found = re.search(rf"^{name}:\s+(\d+) kB", status, re.M)
    return int(found[1]) if found else None


def _start_measuring() -> int | None:
    """Give freed memory back to the system and reset the peak (VmHWM) to the current size, so
    that the next model's peak counts only what it takes; the current size in kB."""
    import ctypes
    import ctypes.util

    gc.collect()
    # glibc keeps freed memory for reuse: the previous model's would hide the next one's.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    try:
        Path("/proc/self/clear_refs").write_text("5", encoding="ascii")
    except OSError:
        return None
    return _memory_kb("VmRSS")


def replay(model: str, model_dir: Path, inputs: list[Any]) -> Replay:
    """The model's answer to each input, one call per input, after one call to warm it up."""
    from ..serving.predict import Predictor

    before = _start_measuring()
    predictor = Predictor(model_dir)
    manifest = predictor.manifest
    result = Replay(model, manifest["run_id"] or "", manifest["checksum"])
    with contextlib.suppress(FlywheelError):  # a server's first request pays for lazy set-up
        predictor.predict(inputs[:1])
    for raw in inputs:
        start = time.perf_counter()
        try:
            [answer] = predictor.predict([raw])
        except FlywheelError:
            answer = None  # an input this model cannot read
        result.latencies_ms.append((time.perf_counter() - start) * 1000)
        result.answers.append(answer)
    peak = _memory_kb("VmHWM")
    if before is not None and peak is not None:
        result.peak_memory_mb = round((peak - before) / 1024, 1)
    del predictor
    return result


def _ratio(candidate: float | None, champion: float | None) -> float | None:
    if candidate is None or champion is None or champion <= 0:
        return None
    return round(candidate / champion, 3)


def judge(champion: Replay, candidate: Replay, budgets: Any) -> dict[str, Any]:
    """The report: agreement on the inputs the champion answered, latency and memory ratios,
    and each missed budget in words."""
    scores = [
        0.0 if theirs is None else task.agreement(ours, theirs)
        for ours, theirs in zip(champion.answers, candidate.answers, strict=True)
        if ours is not None
    ]
    agreement = round(float(np.mean(scores)), 4) if scores else 0.0
    latency = {"champion": champion.latency(), "candidate": candidate.latency()}
    latency_ratio = _ratio(latency["candidate"]["p95"], latency["champion"]["p95"])
    memory_ratio = _ratio(candidate.peak_memory_mb, champion.peak_memory_mb)
    missed = []
    if agreement < budgets.min_agreement:
        minimum = budgets.min_agreement
        missed.append(f"agreement {agreement} is below shadow.min_agreement {minimum}")
    if latency_ratio is not None and latency_ratio > budgets.max_latency_ratio:
        missed.append(
            f"p95 latency is x{latency_ratio} the champion's, above shadow.max_latency_ratio "
            f"{budgets.max_latency_ratio}"
        )
    if memory_ratio is not None and memory_ratio > budgets.max_memory_ratio:
        missed.append(
            f"peak memory is x{memory_ratio} the champion's, above shadow.max_memory_ratio "
            f"{budgets.max_memory_ratio}"
        )
    return {
        "passed": not missed,
        "missed": missed,
        "inputs": len(champion.answers),
        "champion": {"model": champion.model, "run_id": champion.run_id},
        "candidate": {"model": candidate.model, "run_id": candidate.run_id},
        "agreement": {
            "mean": agreement,
            "min": budgets.min_agreement,
            "per_input": [round(score, 4) for score in scores],
            "candidate_refused": sum(answer is None for answer in candidate.answers),
        },
        "latency_ms": latency | {"p95_ratio": latency_ratio, "max": budgets.max_latency_ratio},
        "peak_memory_mb": {
            "champion": champion.peak_memory_mb,
            "candidate": candidate.peak_memory_mb,
            "ratio": memory_ratio,
            "max": budgets.max_memory_ratio,
        },
    }


def plot(report: dict[str, Any], champion: Replay, candidate: Replay, path: Path) -> None:
    """Agreement per input, both latency distributions, both peak memories."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (agree, latency, memory) = plt.subplots(1, 3, figsize=(10, 3))
    agree.hist(report["agreement"]["per_input"], bins=20, range=(0, 1))
    agree.axvline(report["agreement"]["min"], color="red", linestyle="--")
    agree.set_title(f"agreement: mean {report['agreement']['mean']}", fontsize=9)
    agree.set_xlabel("per input (1: the same answer)", fontsize=8)
    latency.boxplot([champion.latencies_ms, candidate.latencies_ms], showfliers=False)
    latency.set_xticks([1, 2], ["champion", "candidate"])
    latency.set_title(f"latency (ms): p95 x{report['latency_ms']['p95_ratio']}", fontsize=9)
    peaks = [champion.peak_memory_mb or 0.0, candidate.peak_memory_mb or 0.0]
    memory.bar(["champion", "candidate"], peaks)
    memory.set_title(f"peak memory (MB): x{report['peak_memory_mb']['ratio']}", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def shadow(
    params: Any,
    candidate: str,
    champion: str | None = None,
    folder: Path = MONITOR_DIR,
    out_dir: Path = SHADOW_DIR,
) -> dict[str, Any]:
    """Replay the kept inputs against `champion` (default: the registry's @champion) and
    `candidate` (a folder, an MLflow model URI or a run id); write the report and its plot."""
    from ..serving.predict import from_model_input
    from .registry import model_folder

    settings = params.monitor
    lines = sample(folder, settings.keep_inputs_days, params.shadow.sample_size, params.seed)
    inputs = [from_model_input(line["input"]) for line in lines]
    champion = champion or champion_uri()
    with ExitStack() as folders:
        ours, theirs = (
            replay(name, folders.enter_context(model_folder(model_uri(name))), inputs)
            for name in (champion, candidate)
        )
    report = judge(ours, theirs, params.shadow)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / REPORT).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    plot(report, ours, theirs, out_dir / PLOT)
    return report


def summary(report: dict[str, Any]) -> str:
    """One line of what the replay found."""
    latency, memory = report["latency_ms"], report["peak_memory_mb"]
    line = (
        f"replayed {report['inputs']} kept inputs: agreement {report['agreement']['mean']} "
        f"(min {report['agreement']['min']}); p95 latency {latency['candidate']['p95']} ms "
        f"against {latency['champion']['p95']} ms (x{latency['p95_ratio']}, max {latency['max']})"
    )
    if memory["ratio"] is None:
        return line + "; peak memory not measured (Linux only)"
    return line + (
        f"; peak memory {memory['candidate']} MB against {memory['champion']} MB "
        f"(x{memory['ratio']}, max {memory['max']})"
    )


def require_passed(run_id: str, champion_run_id: str, report_file: Path) -> None:
    """For `promote` with registry.require_shadow: a passing report of this run's model against
    this champion, else FlywheelError saying what to run."""
    fix = f"run `make shadow CANDIDATE={run_id}` first"
    if not report_file.is_file():
        raise FlywheelError(
            f"not promoted: registry.require_shadow is true and there is no {report_file}: {fix}"
        )
    try:
        report = json.loads(report_file.read_text(encoding="utf-8"))
        names = report["candidate"]["run_id"], report["champion"]["run_id"], report["passed"]
    except (ValueError, KeyError, TypeError):
        raise FlywheelError(f"not promoted: {report_file} cannot be read: {fix}") from None
    candidate, champion, passed = names
    if candidate != run_id or champion != champion_run_id:
        raise FlywheelError(
            f"not promoted: {report_file} compared run {candidate} with run {champion}, not run "
            f"{run_id} with the champion's run {champion_run_id}: {fix}"
        )
    if not passed:
        raise FlywheelError(
            f"not promoted: run {run_id} failed the shadow replay ({'; '.join(report['missed'])})"
            ": see shadow/shadow.png, or lower the budgets in params.yaml's shadow section"
        )
