"""Drift monitoring: what `serve` sees, compared with what the model was trained on.

`serve` hands each answered request to a `Recorder`, which computes a few summary features of
the input and the prediction on its own thread (off the request path; when it falls behind,
records are dropped and counted, never waited for) and appends them to bounded, rotated JSON-lines
files in `monitoring/` (with `monitor.keep_inputs`, the inputs themselves too, which `shadow`
replays, in files of their own that expire). `monitor` computes the same features on the
training split and compares each with the recorded traffic: numeric features with the
two-sample Kolmogorov-Smirnov test, the predicted labels with the total variation distance of the
two label distributions. It writes `monitoring/drift.json` and `monitoring/drift.png` and fails
when a feature moved further than the thresholds in params.yaml (the `monitor` section).
"""

from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.config import MonitorParams
from ..core.errors import FlywheelError
from ..core.paths import MONITOR_DIR
from ..tasks import task

RECORDS = "requests.jsonl"
# The inputs themselves (monitor.keep_inputs): {"at", "input", "prediction"} per line.
KEPT_INPUTS = "inputs.jsonl"
DRIFT_FILE = "drift.json"
DRIFT_PLOT = "drift.png"
# At most this many training inputs are summarised as the reference (a seeded sample of them).
REFERENCE_SIZE = 2000
# The recorder's queue: beyond it, records are dropped instead of slowing requests down.
QUEUE_SIZE = 10_000
# A shift counts only when it is also unlikely by chance (the KS test's p-value below this).
SIGNIFICANCE = 0.01


# What the recorder's queue holds: inputs as decoded, their answers, the inputs as sent.
_Answered = tuple[list[Any], list[dict[str, Any]], list[Any]]


class Recorder:
    """Appends `{input features, prediction}` lines for served requests, on its own thread."""

    def __init__(self, processor: Any, settings: MonitorParams, folder: Path = MONITOR_DIR):
        self.settings = settings
        self.folder = folder
        self.input_features = task.input_features(processor)
        self.pending: queue.Queue[_Answered | None] = queue.Queue(QUEUE_SIZE)
        self.dropped = 0
        self.written = 0
        self.thread = threading.Thread(target=self._write, name="monitor-recorder", daemon=True)
        self.thread.start()

    def record(
        self, inputs: list[Any], predictions: list[dict[str, Any]], sent: list[Any] | None = None
    ) -> None:
        """Queue answered inputs; `sent`: the same as the client sent them (a file's bytes),
        where the server decoded them first, for monitor.keep_inputs."""
        try:
            self.pending.put_nowait((inputs, predictions, sent or inputs))
        except queue.Full:
            self.dropped += len(inputs)

    def close(self) -> None:
        """Write what is queued, then stop."""
        self.pending.put(None)
        self.thread.join(timeout=30)

    def _write(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / RECORDS
        lines = _count_lines(path)
        kept = self.folder / KEPT_INPUTS
        kept_lines = _count_lines(kept)
        if self.settings.keep_inputs:
            expire_inputs(self.folder, self.settings.keep_inputs_days)
        while (item := self.pending.get()) is not None:
            inputs, predictions, sent = item
            with path.open("a", encoding="utf-8") as file:
                for raw, prediction in zip(inputs, predictions, strict=True):
                    try:
                        features = self.input_features(task.decode_input(raw))
                    except Exception:  # a record is never worth a dead recorder
                        continue
                    # When, and what the server measured of a generated answer (tokens, latency,
                    # time to its first token): `monitor` reports usage and cost from them.
                    line = features | task.output_features(prediction)
                    line |= prediction.get("usage", {}) | {"at": round(time.time(), 3)}
                    file.write(json.dumps(line) + "\n")
                    lines += 1
                    self.written += 1
            if self.settings.keep_inputs:
                kept_lines += _keep(kept, sent, predictions)
                if kept_lines >= self.settings.max_records_per_file:
                    _rotate(self.folder, self.settings.max_files, KEPT_INPUTS)
                    expire_inputs(self.folder, self.settings.keep_inputs_days)
                    kept_lines = 0
            if lines >= self.settings.max_records_per_file:
                _rotate(self.folder, self.settings.max_files)
                lines = 0


def _keep(path: Path, inputs: list[Any], predictions: list[dict[str, Any]]) -> int:
    """Append the inputs as clients sent them (text, files as base64) with their predictions,
    less what a prediction carries as a file (synthesized speech): lines written."""
    from ..serving.predict import to_model_input

    at = round(time.time(), 3)
    with path.open("a", encoding="utf-8") as file:
        for raw, prediction in zip(inputs, predictions, strict=True):
            answer = {k: v for k, v in prediction.items() if not k.endswith("_base64")}
            line = {"at": at, "input": to_model_input(raw), "prediction": answer}
            file.write(json.dumps(line) + "\n")
    return len(inputs)


def _kept_files(folder: Path) -> list[Path]:
    """The kept-input files, oldest first: inputs.2.jsonl, inputs.1.jsonl, inputs.jsonl."""

    def age(path: Path) -> int:
        index = path.name.removeprefix("inputs").removesuffix(".jsonl").strip(".")
        return int(index) if index.isdigit() else 0

    return sorted(folder.glob("inputs*.jsonl"), key=age, reverse=True)


def expire_inputs(folder: Path, days: float) -> None:
    """Delete the kept-input files written to last more than `days` ago (a file's lines are
    older still); `kept_inputs` skips the older lines of the files left."""
    oldest = time.time() - days * 86_400
    for path in _kept_files(folder):
        if path.stat().st_mtime < oldest:
            path.unlink(missing_ok=True)


# What to do when no kept inputs are there to read (`shadow`, `harvest`).
KEEP_INPUTS_FIRST = (
    "set monitor.keep_inputs: true in params.yaml, restart `make serve` and let it answer "
    "traffic first"
)


def seeded_sample(lines: list[Any], size: int, seed: int) -> list[Any]:
    """At most `size` of `lines`, drawn with `seed`, in their order."""
    if len(lines) <= size:
        return lines
    chosen = np.sort(np.random.default_rng(seed).choice(len(lines), size, replace=False))
    return [lines[index] for index in chosen]


def kept_inputs(folder: Path, days: float) -> list[dict[str, Any]]:
    """The kept inputs of the last `days`, oldest first."""
    oldest = time.time() - days * 86_400
    lines = []
    for path in _kept_files(folder):
        for text in path.read_text(encoding="utf-8").splitlines():
            try:
                line = json.loads(text)
            except ValueError:
                continue  # a line cut short by a killed server
            if line.get("at", 0) >= oldest:
                lines.append(line)
    return lines


def _count_lines(path: Path) -> int:
    if not path.is_file():
        return 0
    with path.open("rb") as file:
        return sum(1 for _ in file)


def _rotate(folder: Path, keep: int, name: str = RECORDS) -> None:
    """requests.jsonl becomes requests.1.jsonl, which becomes requests.2.jsonl, ...; beyond
    `keep` files in all, the oldest is deleted (the same for `name`, e.g. inputs.jsonl)."""
    stem = name.removesuffix(".jsonl")
    oldest = folder / f"{stem}.{keep - 1}.jsonl" if keep > 1 else folder / name
    oldest.unlink(missing_ok=True)
    for index in range(keep - 2, 0, -1):
        older = folder / f"{stem}.{index}.jsonl"
        if older.is_file():
            older.rename(folder / f"{stem}.{index + 1}.jsonl")
    if keep > 1 and (folder / name).is_file():
        (folder / name).rename(folder / f"{stem}.1.jsonl")


def read_records(folder: Path = MONITOR_DIR) -> list[dict[str, Any]]:
    files = sorted(folder.glob("requests*.jsonl"))
    records = []
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue  # a line cut short by a killed server
    return records


def reference(train: Any, processor: Any, seed: int) -> list[dict[str, Any]]:
    """The same summaries for (a seeded sample of) the training split, with its true outputs in
    place of predictions."""
    indices = np.arange(len(train))
    if len(indices) > REFERENCE_SIZE:
        indices = np.sort(
            np.random.default_rng(seed).choice(indices, REFERENCE_SIZE, replace=False)
        )
    rows = train.select(indices.tolist())
    input_features = task.input_features(processor)
    target_features = task.target_features(train)
    summaries = []
    for row in rows:
        summary = input_features(task.decode_input(row["input"])) | target_features(row["label"])
        summaries.append(summary)
    return summaries


@dataclass(frozen=True)
class Shift:
    name: str
    kind: str  # "ks" (numeric) or "tvd" (labels)
    statistic: float
    p_value: float | None
    threshold: float
    train_mean: float | None
    live_mean: float | None

    @property
    def drifted(self) -> bool:
        if self.kind == "tvd":
            return self.statistic > self.threshold
        return self.statistic > self.threshold and (self.p_value or 0.0) < SIGNIFICANCE


def compare(
    train: list[dict[str, Any]], live: list[dict[str, Any]], settings: MonitorParams
) -> list[Shift]:
    from scipy.stats import ks_2samp

    shifts = []
    for name in train[0]:
        before = [row[name] for row in train if name in row]
        after = [row[name] for row in live if name in row]
        if not after:
            continue
        if name == "label":
            labels = sorted(set(before) | set(after))
            p = np.array([before.count(label) for label in labels], dtype=float) / len(before)
            q = np.array([after.count(label) for label in labels], dtype=float) / len(after)
            distance = float(np.abs(p - q).sum() / 2)
            shifts.append(Shift(name, "tvd", distance, None, settings.max_label_shift, None, None))
            continue
        test = ks_2samp(before, after)
        shifts.append(
            Shift(
                name,
                "ks",
                float(test.statistic),
                float(test.pvalue),
                settings.max_feature_shift,
                float(np.mean(before)),
                float(np.mean(after)),
            )
        )
    return shifts


def plot(train: list[dict[str, Any]], live: list[dict[str, Any]], shifts: list[Shift], path: Path):
    """One panel per feature: the training split's distribution beside the traffic's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(shifts), figsize=(3.2 * len(shifts), 2.8), squeeze=False)
    for axis, shift in zip(axes[0], shifts, strict=True):
        before = [row[shift.name] for row in train if shift.name in row]
        after = [row[shift.name] for row in live if shift.name in row]
        if shift.kind == "tvd":
            labels = sorted(set(before) | set(after))
            positions = np.arange(len(labels))
            axis.bar(positions - 0.2, [before.count(x) / len(before) for x in labels], 0.4)
            axis.bar(positions + 0.2, [after.count(x) / len(after) for x in labels], 0.4)
            axis.set_xticks(positions, labels, rotation=45, ha="right", fontsize=7)
        else:
            bins = np.histogram_bin_edges(np.concatenate([before, after]), bins=20)
            axis.hist(before, bins=bins, density=True, alpha=0.5, label="training split")
            axis.hist(after, bins=bins, density=True, alpha=0.5, label="traffic")
        verdict = "DRIFT" if shift.drifted else "ok"
        axis.set_title(f"{shift.name}: {shift.statistic:.2f} ({verdict})", fontsize=9)
    axes[0][0].legend(["training split", "traffic"], fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)


def usage(live: list[dict[str, Any]], settings: MonitorParams) -> dict[str, Any] | None:
    """Tokens per day (UTC), latency and time to first token (p50/p95), and the cost at
    params.yaml's prices, of the recorded requests that counted tokens (text generation);
    None when none did."""
    counted = [row for row in live if "completion_tokens" in row]
    if not counted:
        return None
    days: dict[str, dict[str, Any]] = {}
    for row in counted:
        day = time.strftime("%Y-%m-%d", time.gmtime(row.get("at", 0)))
        totals = days.setdefault(day, {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0})
        totals["requests"] += 1
        totals["prompt_tokens"] += int(row["prompt_tokens"])
        totals["completion_tokens"] += int(row["completion_tokens"])

    def spread(name: str) -> dict[str, float] | None:
        values = [row[name] for row in counted if name in row]
        if not values:
            return None
        p50, p95 = np.percentile(values, [50, 95])
        return {"p50": round(float(p50), 3), "p95": round(float(p95), 3)}

    prompt_price, completion_price = settings.prompt_token_price, settings.completion_token_price
    priced = prompt_price is not None and completion_price is not None
    for totals in days.values():
        if priced:
            cost = (
                totals["prompt_tokens"] * prompt_price
                + totals["completion_tokens"] * completion_price
            )
            totals["cost"] = round(cost / 1_000_000, 6)
    return {
        "requests": len(counted),
        "days": dict(sorted(days.items())),
        "latency_ms": spread("latency_ms"),
        "ttft_ms": spread("ttft_ms"),
        "cost": round(sum(day["cost"] for day in days.values()), 6) if priced else None,
    }


def monitor(params: Any, model_dir: Path, folder: Path = MONITOR_DIR) -> list[Shift]:
    """Compare the recorded traffic with the training split; write drift.json and drift.png."""
    from ..data.prepare import load_prepared
    from ..serving.predict import require_model

    settings = params.monitor
    live = read_records(folder)
    if len(live) < settings.min_records:
        raise FlywheelError(
            f"{folder} holds {len(live)} recorded requests, fewer than monitor.min_records "
            f"({settings.min_records}): serve traffic with monitor.record: true first"
        )
    require_model(model_dir)
    processor, _ = task.load(model_dir)
    train = reference(load_prepared(names=("train",))["train"], processor, params.seed)
    shifts = compare(train, live, settings)
    (folder / DRIFT_FILE).write_text(
        json.dumps(
            {
                "requests": len(live),
                "training_examples": len(train),
                "drifted": [shift.name for shift in shifts if shift.drifted],
                "usage": usage(live, settings),
                "features": {
                    shift.name: {
                        "test": "kolmogorov-smirnov" if shift.kind == "ks" else "total variation",
                        "statistic": round(shift.statistic, 6),
                        "p_value": None if shift.p_value is None else float(f"{shift.p_value:.6g}"),
                        "threshold": shift.threshold,
                        "drifted": shift.drifted,
                        "training_mean": shift.train_mean,
                        "traffic_mean": shift.live_mean,
                    }
                    for shift in shifts
                },
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    plot(train, live, shifts, folder / DRIFT_PLOT)
    return shifts
