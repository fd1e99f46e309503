"""`reproduce RUN_ID`: make a tracked result again from its lineage, and compare the metrics.

The run's tags name the git commit and the DVC hash of its data. The commit is checked out in a
separate git worktree (the project's own tree is never touched); DVC restores the data from the
project's cache, or from the remote when the cache lacks it, and the data's hash must equal the
run's; then `dvc repro` re-runs training and evaluation there and each test metric is compared.
When the installed packages differ from the run's, one line says which, and how to install the
run's `uv.lock`: the re-run goes ahead with this environment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import FlywheelError
from ..core.paths import METRICS_FILE, PREPARED_DIR
from ..tracking import environment, runs
from ..tracking.pipeline import (
    LOCK_FILE,
    PREPARE_STAGE,
    directory_md5,
    file_md5,
    locked_output_md5,
    read_lock,
)

# Where the pipeline re-runs from: everything from training on is forced to run again.
FIRST_RERUN_STAGE = "train"


@dataclass(frozen=True)
class MetricComparison:
    name: str
    original: float
    reproduced: float | None

    @property
    def difference(self) -> float | None:
        return None if self.reproduced is None else abs(self.reproduced - self.original)


@dataclass(frozen=True)
class Reproduction:
    run_id: str
    commit: str
    data_hash: str
    metrics: list[MetricComparison]

    def matches(self, tolerance: float) -> bool:
        return all(m.difference is not None and m.difference <= tolerance for m in self.metrics)

    def table(self) -> str:
        width = max([len(m.name) for m in self.metrics] + [6])
        lines = [f"{'metric':<{width}}  {'original':>12}  {'reproduced':>12}  difference"]
        for m in self.metrics:
            new = "missing" if m.reproduced is None else f"{m.reproduced:.6f}"
            diff = "missing" if m.difference is None else f"{m.difference:.6g}"
            lines.append(f"{m.name:<{width}}  {m.original:>12.6f}  {new:>12}  {diff}")
        return "\n".join(lines)


def _run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip().splitlines()
        last = output[-1] if output else f"exit {result.returncode}"
        raise FlywheelError(f"`{' '.join(command[:4])} ...` failed in {cwd}: {last}")
    return result.stdout


def _dvc(*args: str) -> list[str]:
    return [sys.executable, "-m", "dvc", *args]


def _original_run(run_id: str) -> Any:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    uri = runs.tracking_uri()
    runs.check_reachable(uri)
    runs.require_store(uri)
    try:
        return MlflowClient(uri).get_run(run_id)
    except MlflowException:
        raise FlywheelError(
            f"RUN: no MLflow run {run_id!r} in {uri}: copy a run id from `mlflow ui` "
            "or from the output of `train`"
        ) from None


def _lineage(run: Any) -> tuple[str, str]:
    tags = run.data.tags
    commit = tags.get("lineage.git_commit", "none")
    if commit == "none":
        raise FlywheelError(
            f"run {run.info.run_id} has no git commit: it was trained outside a git repository "
            "(run `make init`, commit, and train again)"
        )
    if tags.get("lineage.git_dirty") != "false":
        raise FlywheelError(
            f"run {run.info.run_id} was trained from uncommitted changes "
            f"(lineage.git_dirty={tags.get('lineage.git_dirty')}): its code is not in git; "
            "commit first, then train again"
        )
    return commit, tags["lineage.data_hash"]


def environment_difference(run: Any) -> str | None:
    """One line naming how this environment differs from the run's; None when it does not, or
    when the run predates the record."""
    recorded_hash = run.data.tags.get(environment.HASH_TAG)
    current = environment.installed(runs.EXPERIMENT)
    if not recorded_hash or environment.fingerprint(current) == recorded_hash:
        return None
    import mlflow

    run_id = run.info.run_id
    try:
        with tempfile.TemporaryDirectory() as folder:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id,
                artifact_path=environment.ARTIFACT,
                dst_path=folder,
                tracking_uri=runs.tracking_uri(),
            )
            recorded = environment.parse(Path(path).read_text(encoding="utf-8"))
        what = environment.summary(environment.differences(recorded, current))
    except Exception:  # the list is lost (a deleted artifact): the hash alone still tells
        what = "the installed packages"
    commit = run.data.tags.get("lineage.git_commit", "none")[:12]
    # The lock must be in the run's commit, not only on the disk of the machine that ran it.
    committed = subprocess.run(
        ["git", "cat-file", "-e", f"{commit}:uv.lock"], capture_output=True, check=False
    )
    if run.data.tags.get("lineage.dependency_file") == "uv.lock" and committed.returncode == 0:
        # The run's torch build: a local version such as 2.9.1+cu128 names it.
        build = run.data.tags.get("lineage.torch", "").partition("+")[2]
        accelerator = " ACCELERATOR=cu128" if build.startswith("cu") else ""
        setup = f"make setup{accelerator}"
        how = f"`git checkout {commit} -- pyproject.toml uv.lock && {setup}` installs the run's"
    else:
        how = "the run had no committed uv.lock to install its environment from"
    return f"this environment differs from run {run_id}'s: {what}; {how}"


def _commit_locking(root: Path, data_hash: str, commit: str) -> str:
    """A commit whose dvc.lock records this data: the run's own, or the later one that
    committed the lock `dvc repro` wrote while the run was made."""
    found = _run(
        ["git", "log", "--all", "--format=%H", f"-S{data_hash}", "--", str(LOCK_FILE)], root
    )
    for candidate in [commit, *found.split()]:
        shown = subprocess.run(
            ["git", "show", f"{candidate}:{LOCK_FILE}"], cwd=root, capture_output=True, text=True
        )
        if shown.returncode != 0:
            continue
        if locked_output_md5(read_lock(shown.stdout), PREPARE_STAGE, PREPARED_DIR) == data_hash:
            return candidate
    raise FlywheelError(
        f"no commit's {LOCK_FILE} records the data {data_hash} of this run: "
        f"commit {LOCK_FILE} after `dvc repro` so DVC can find the data again"
    )


def _restore_data(root: Path, worktree: Path, data_hash: str, lock_commit: str) -> None:
    cache = _run(_dvc("cache", "dir"), root).strip()
    _run(_dvc("config", "--local", "cache.dir", cache), worktree)
    # A folder remote is relative to .dvc/: pin it to where the project's own resolves.
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        remotes = {name: conf["url"] for name, conf in repo.config["remote"].items()}
    for name, url in remotes.items():
        if Path(url).is_absolute():
            _run(_dvc("remote", "modify", "--local", name, "url", url), worktree)
    _run(["git", "checkout", lock_commit, "--", str(LOCK_FILE)], worktree)
    checkout = subprocess.run(
        _dvc("checkout", "--quiet", str(PREPARED_DIR)), cwd=worktree, capture_output=True
    )
    if checkout.returncode != 0:  # not in the project's cache: fetch it from the DVC remote
        _run(_dvc("pull", str(PREPARED_DIR)), worktree)
    restored = directory_md5(worktree / PREPARED_DIR)
    if restored != data_hash:
        altered = _altered_files(worktree / PREPARED_DIR, cache, data_hash)
        raise FlywheelError(
            f"data hash mismatch: the run was trained on {PREPARED_DIR} {data_hash}, but DVC "
            f"restored {restored} ({altered or 'files'} altered in the DVC cache or remote): "
            "restore the data from an intact DVC remote"
        )


def _altered_files(folder: Path, cache: str, data_hash: str) -> str:
    """The restored files whose MD5 differs from the run's DVC listing, when the cache has it."""
    listing = Path(cache) / "files" / "md5" / data_hash[:2] / data_hash[2:]
    if not listing.is_file():
        return ""
    entries = json.loads(listing.read_text(encoding="utf-8"))
    return ", ".join(
        entry["relpath"]
        for entry in entries
        if not (folder / entry["relpath"]).is_file()
        or file_md5(folder / entry["relpath"]) != entry["md5"]
    )


def _metrics(run: Any, reproduced: dict[str, float]) -> list[MetricComparison]:
    """The run's test metrics (`test_<name>` in MLflow) against the re-run's metrics.json
    (`<name>`; runs of earlier releases named the loss `test_loss` in both: matched as is)."""
    comparisons = []
    for key, value in sorted(run.data.metrics.items()):
        if not key.startswith("test_"):
            continue
        name = key if key in reproduced else key.removeprefix("test_")
        comparisons.append(MetricComparison(name, float(value), reproduced.get(name)))
    if not comparisons:
        raise FlywheelError(f"run {run.info.run_id} has no test metrics to compare")
    return comparisons


def _absolute_tracking_uri(root: Path) -> str:
    uri = runs.tracking_uri()
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return "sqlite:///" + str((root / uri.removeprefix("sqlite:///")).resolve())
    return uri


def reproduce(run_id: str, root: Path = Path()) -> Reproduction:
    root = root.resolve()
    if not (root / ".git").exists() or not (root / ".dvc").is_dir():
        raise FlywheelError("reproduce needs the project's git and DVC repository: run `make init`")
    run = _original_run(run_id)
    commit, data_hash = _lineage(run)
    difference = environment_difference(run)
    if difference:
        print(f"warning: {difference}", file=sys.stderr, flush=True)
    lock_commit = _commit_locking(root, data_hash, commit)
    scratch = Path(tempfile.mkdtemp(prefix="reproduce-"))
    worktree = scratch / "tree"
    try:
        _run(["git", "worktree", "add", "--detach", "--quiet", str(worktree), commit], root)
        _restore_data(root, worktree, data_hash, lock_commit)
        env = {
            **os.environ,
            # The commit's code, run by this environment's Python (DVC's `python -m ...`).
            "PYTHONPATH": str(worktree / "src"),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "MLFLOW_TRACKING_URI": _absolute_tracking_uri(root),
            runs.REPRODUCES_VARIABLE: run_id,
        }
        repro = _dvc("repro", "--force", "--downstream", FIRST_RERUN_STAGE)
        print(f"re-running the pipeline at {commit[:12]}: dvc repro ...", flush=True)
        # DVC and the Trainer show their progress here: this is the long part.
        if subprocess.run(repro, cwd=worktree, env=env).returncode != 0:
            raise FlywheelError(f"dvc repro failed at commit {commit[:12]}: see its output above")
        reproduced = json.loads((worktree / METRICS_FILE).read_text(encoding="utf-8"))
    finally:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(worktree)], cwd=root, capture_output=True
        )
        shutil.rmtree(scratch, ignore_errors=True)
        subprocess.run(["git", "worktree", "prune"], cwd=root, capture_output=True)
    return Reproduction(run_id, commit, data_hash, _metrics(run, reproduced))
