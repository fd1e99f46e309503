"""MLflow tracking: where runs go, and the lineage each run records so it can be made again.

Local by default (`mlflow.db` in the project, artifacts in `mlruns/`); any server through
`MLFLOW_TRACKING_URI`. Every run records the git commit (and whether the tree was dirty), the
hash of the prepared data, the hash of the dependency lock (`uv.lock`), the installed packages
(`environment.txt`) and their hash, and the container image when `CONTAINER_IMAGE` names one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..core.errors import FlywheelError
from ..core.project import TASK
from ..tasks import task
from . import environment

logger = logging.getLogger(__name__)
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
EXPERIMENT = "{{ cookiecutter.project_slug }}"
IMAGE_VARIABLE = "CONTAINER_IMAGE"
# Set by `reproduce` for the run it makes, so that run names the one it reproduces.
REPRODUCES_VARIABLE = "FLYWHEEL_REPRODUCES_RUN"
BOOKKEEPING = (":(exclude)dvc.lock", ":(exclude,glob)**/.gitignore", ":(exclude)metrics.json")
# The dependency files whose content pins the environment, most specific first.
DEPENDENCY_FILES = ("uv.lock", "requirements.lock", "requirements.txt", "pyproject.toml")
# What a logged model needs to load elsewhere, pinned to the versions of this run.
PINNED_PACKAGES = (
    "torch",
    "transformers",
    "mlflow",
    "pandas",
    "numpy",
    "scikit-learn",
    *task.REQUIREMENTS,
)


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


# A new local store is created by a second process while this one loads the libraries.
_STORE_CREATION = """
import gc, sys
gc.disable()  # a short-lived process: collecting while MLflow loads is wasted work
import mlflow
mlflow.set_tracking_uri(sys.argv[1])
mlflow.set_experiment(sys.argv[2])
"""
_store_creator: subprocess.Popen[bytes] | None = None


def create_store_in_background() -> None:
    """Start creating a new local tracking store in a second process, if one is needed.

    A new SQLite store runs MLflow's schema migrations: about 1.2 s with the imports they need,
    which a second process spends on another core while this one loads torch and transformers
    (the first `make train` of a project). `tracked_run` waits for it before it touches the
    store, so the two never race. Nothing happens for an existing store, a server, or a rank
    other than 0.
    """
    global _store_creator
    uri = tracking_uri()
    if not uri.startswith("sqlite:///") or not is_main_process() or _store_creator is not None:
        return
    if Path(uri.removeprefix("sqlite:///")).exists():
        return
    _store_creator = subprocess.Popen(
        [sys.executable, "-c", _STORE_CREATION, uri, EXPERIMENT],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_for_store_creation() -> None:
    """Whatever the second process did, this one then opens (and if need be creates) the store:
    MLflow serialises table creation with a file lock, so a failed attempt costs only time."""
    global _store_creator
    if _store_creator is None:
        return
    try:
        _store_creator.wait(timeout=120)
    except subprocess.TimeoutExpired:
        _store_creator.kill()
        _store_creator.wait()
    _store_creator = None


def is_main_process() -> bool:
    """Rank 0 under torchrun/accelerate, or a plain single process: the one that logs and saves."""
    return int(os.environ.get("RANK", "0")) == 0


def _git(*args: str) -> str | None:
    try:
        result = subprocess.run(["git", *args], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return result.stdout.strip()


def dependencies_hash(root: Path = Path()) -> tuple[str, str]:
    for name in DEPENDENCY_FILES:
        if (root / name).is_file():
            return name, hashlib.sha256((root / name).read_bytes()).hexdigest()
    return "none", ""


def lineage_tags(data_hash: str) -> dict[str, str]:
    import torch
    import transformers

    from ..data.prepare import feedback_rows
    from .pipeline import lineage_tags as dvc_tags

    commit = _git("rev-parse", "HEAD")
    # The pipeline's own bookkeeping (DVC rewrites dvc.lock and its .gitignore files while
    # `dvc repro` runs) does not make the code dirty.
    dirty = _git("status", "--porcelain", "--untracked-files=no", "--", ".", *BOOKKEEPING)
    dependency_file, dependency_hash = dependencies_hash()
    packages = environment.installed(EXPERIMENT)
    tags = {
        "lineage.git_commit": commit or "none",
        "lineage.git_dirty": "unknown" if dirty is None else str(bool(dirty)).lower(),
        "lineage.data_hash": data_hash,
        # Training rows labelled in Label Studio (data/feedback) rather than from data.source.
        "lineage.feedback_rows": str(feedback_rows()),
        "lineage.dependency_file": dependency_file,
        "lineage.dependency_hash": dependency_hash,
        environment.HASH_TAG: environment.fingerprint(packages),
        "lineage.python": platform.python_version(),
        "lineage.torch": torch.__version__,
        "lineage.transformers": transformers.__version__,
        "task": TASK,
        **dvc_tags(data_hash),
    }
    if os.environ.get(REPRODUCES_VARIABLE):
        tags["lineage.reproduces"] = os.environ[REPRODUCES_VARIABLE]
    if os.environ.get(IMAGE_VARIABLE):
        tags["lineage.container_image"] = os.environ[IMAGE_VARIABLE]
    return tags


def check_reachable(uri: str) -> None:
    """Fail in seconds, not after MLflow's minutes of retries, when a server does not answer."""
    if not uri.startswith(("http://", "https://")):
        return
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=10):
            return
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise FlywheelError(
            f"MLflow tracking server {uri} is unreachable ({reason}): start it "
            "(make mlflow-server) or unset MLFLOW_TRACKING_URI to track locally"
        ) from None


def require_store(uri: str) -> None:
    """Refuse to read a run from a local store that does not exist (opening it would create an
    empty one, and MLflow would log its creation)."""
    store = uri.removeprefix("sqlite:///")
    if uri.startswith("sqlite:///") and not Path(store).is_file():
        raise FlywheelError(
            f"no MLflow store at {store}: run from the project root, or set MLFLOW_TRACKING_URI "
            "to the store that holds the run"
        )


# Each prepared split as MLflow names the role of a dataset input.
DATASET_CONTEXTS = {"train": "training", "validation": "validation", "test": "testing"}
# How many differing parameters a run's name lists before it says how many more there are.
NAME_PARAMS = 3


def run_name(
    kind: str, params: dict[str, Any], previous: dict[str, str] | None, commit: str | None = None
) -> str:
    """A name people can tell runs apart by in the MLflow UI: the kind and the task, the code's
    commit (as `lineage_tags` found it), and the parameters that differ from the experiment's
    latest run."""
    short = commit[:7] if commit and commit != "none" else "no-git"
    name = f"{kind} {TASK} @ {short}"
    if previous is None:
        return name
    changed = [f"{key}={value}" for key, value in params.items() if previous.get(key) != str(value)]
    if not changed:
        return name
    shown = ", ".join(changed[:NAME_PARAMS])
    more = f" (+{len(changed) - NAME_PARAMS} more)" if len(changed) > NAME_PARAMS else ""
    return f"{name}: {shown}{more}"[:250]


def _latest_params() -> dict[str, str] | None:
    import mlflow

    runs = mlflow.search_runs(
        experiment_names=[EXPERIMENT],
        max_results=1,
        order_by=["attributes.start_time DESC"],
        output_format="list",
    )
    return runs[0].data.params if runs else None


def _dataset_source(source: str) -> Any:
    """Where the data came from, as an MLflow dataset source (the UI shows it by the dataset)."""
    if source.startswith("hf:"):
        from mlflow.data.huggingface_dataset_source import HuggingFaceDatasetSource

        return HuggingFaceDatasetSource(path=source.removeprefix("hf:"))
    from mlflow.data.code_dataset_source import CodeDatasetSource

    if source == "embedded":
        return CodeDatasetSource({"data.source": "embedded: made offline by `prepare`"})
    return CodeDatasetSource({"data.source": str(Path(source).resolve())})


def log_datasets(source: str, prepared_dir: Path) -> dict[str, Any]:
    """The prepared splits as the run's dataset inputs: named `<project>-<split>`, digested by
    the MD5 that DVC records for the file (so `dvc.lock` and the DVC cache find it), with the
    source params.yaml named. Returns them by split, to attach metrics to."""
    import mlflow
    from mlflow.data.meta_dataset import MetaDataset

    from ..core.checksums import file_md5

    origin = _dataset_source(source)
    datasets = {}
    for split, context in DATASET_CONTEXTS.items():
        path = prepared_dir / f"{split}.parquet"
        dataset = MetaDataset(origin, name=f"{EXPERIMENT}-{split}", digest=file_md5(path))
        mlflow.log_input(dataset, context=context)
        datasets[split] = dataset
    return datasets


def trained_run_id(model_dir: Path) -> str:
    """The run that trained `model_dir`, from its manifest."""
    from ..core.checksums import verify

    run_id = verify(model_dir)["run_id"]
    if not run_id:
        raise FlywheelError(
            f"{model_dir} names no tracked run: train a model (make train) or pass --run RUN_ID"
        )
    return run_id


def project_client() -> Any:
    """A client of the project's tracking store (and registry), its server checked reachable
    (or its local store there: what this reads, runs and models, is in it);
    the store is also set as MLflow's tracking URI, for the calls that read it from there."""
    import mlflow

    uri = tracking_uri()
    check_reachable(uri)
    require_store(uri)
    mlflow.set_tracking_uri(uri)
    return mlflow.MlflowClient()


def get_run(run_id: str, client: Any = None) -> Any:
    """The MLflow run `run_id` of the project's store (through `client` when given)."""
    import mlflow

    try:
        return (client or project_client()).get_run(run_id)
    except mlflow.exceptions.MlflowException:
        raise FlywheelError(
            f"run {run_id} is not in the MLflow store at {tracking_uri()}: "
            "pass the id of a run of this project (make mlflow-server lists them)"
        ) from None


@contextmanager
def tracked_run(
    kind: str, params: dict[str, Any], tags: dict[str, str], resume: str | None = None
) -> Iterator[Any]:
    """An MLflow run with the params and lineage tags logged; nothing on non-zero ranks. Named
    by `run_name`; a child of the active run when there is one (a `tune` trial). `resume`: the
    id of a run to continue (an interrupted `tune`), when the store still has it."""
    if not is_main_process():
        yield None
        return
    import mlflow

    uri = tracking_uri()
    check_reachable(uri)
    _wait_for_store_creation()
    mlflow.set_tracking_uri(uri)
    try:
        mlflow.set_experiment(EXPERIMENT)
    except Exception as error:  # any failure here means the store is unusable
        reason = str(error).splitlines()[0][:200]
        raise FlywheelError(
            f"MLflow tracking at {uri} is unreachable ({reason}): start the server "
            "(make mlflow-server) or unset MLFLOW_TRACKING_URI to track locally"
        ) from None
    if uri.startswith(("http://", "https://")):
        from . import offline

        offline.fail_fast()
        _sync_kept_runs(uri)
    nested = mlflow.active_run() is not None  # a `tune` trial
    if resume and _run_exists(resume):
        run, fresh = mlflow.start_run(run_id=resume), False
        name = run.info.run_name
    else:
        name = run_name(kind, params, _latest_params(), tags.get("lineage.git_commit"))
        run, fresh = mlflow.start_run(run_name=name, nested=nested), True
    _CURRENT.clear()
    _CURRENT.update(uri=uri, run_id=run.info.run_id, name=name, params=params, tags=tags)
    _CURRENT["nested"] = nested
    try:
        if fresh:
            mlflow.log_params(params)
            mlflow.set_tags(tags)
            if environment.HASH_TAG in tags and not nested:  # a trial's is its parent's
                packages = environment.installed(EXPERIMENT)
                mlflow.log_text(environment.as_text(packages), environment.ARTIFACT)
        yield run
    except BaseException:
        _end_run("FAILED")
        raise
    else:
        _end_run("FINISHED")
    finally:
        _CURRENT.clear()


# The run `tracked_run` has open: what continuing it in the local store needs.
_CURRENT: dict[str, Any] = {}


def resilient(action: Callable[[], Any]) -> Any:
    """Run `action` (MLflow logging); if the tracking server stops answering during the run,
    continue the run in the local store (offline.py) and run `action` there."""
    try:
        return action()
    except Exception as error:
        if not _continues_locally(error):
            raise
        _go_offline(error)
        return action()


def _continues_locally(error: BaseException) -> bool:
    """Whether `error` is the server of the open run going away (a `tune` trial, nested in its
    study's run, is not moved: its study fails instead)."""
    if not _CURRENT or _CURRENT.get("offline") or _CURRENT.get("nested"):
        return False
    from . import offline

    return offline.is_outage(error)


def _go_offline(error: BaseException) -> None:
    from . import offline

    offline.continue_locally(
        _CURRENT["uri"],
        _CURRENT["run_id"],
        EXPERIMENT,
        _CURRENT["name"],
        _CURRENT["params"],
        _CURRENT["tags"],
        error,
    )
    _CURRENT["offline"] = True


def _end_run(status: str) -> None:
    """End the run with `status`; a server gone at that moment gets it through the sync."""
    import mlflow

    try:
        mlflow.end_run(status)
    except Exception as error:
        if not _continues_locally(error):
            raise
        _go_offline(error)
        mlflow.end_run(status)


def _sync_kept_runs(uri: str) -> None:
    """Runs an outage kept in the local store, copied to the server now that it answers."""
    from . import offline

    if offline.pending():
        synced = offline.sync(uri)
        if synced:
            logger.warning(
                "copied %d run(s) kept offline during an outage to %s: %s",
                len(synced),
                uri,
                ", ".join(synced),
            )


def _run_exists(run_id: str) -> bool:
    import mlflow

    try:
        mlflow.MlflowClient().get_run(run_id)
    except mlflow.exceptions.MlflowException:
        return False
    return True


def set_trial_outcome(number: int, best: float | None, pruned: bool) -> None:
    """A `tune` trial's child run: its number, whether it was pruned, its best validation score."""
    import mlflow

    mlflow.set_tags({"tune.trial": str(number), "tune.state": "pruned" if pruned else "complete"})
    if best is not None:
        mlflow.log_metric(f"best_val_{task.JUDGING.selection_metric}", best)


def log_study(best: float, values: dict[str, Any], finished: int, pruned: int) -> None:
    """The parent run of a `tune` study: the best validation score, its values, the counts."""
    import mlflow

    from ..core.paths import BEST_PARAMS_FILE

    if mlflow.active_run() is None:
        return
    mlflow.log_metrics(
        {
            f"best_val_{task.JUDGING.selection_metric}": best,
            "trials_finished": finished,
            "trials_pruned": pruned,
        }
    )
    mlflow.set_tags({f"tune.best.{key}": str(value) for key, value in values.items()})
    mlflow.log_artifact(str(BEST_PARAMS_FILE))


def log_epoch(logs: dict[str, float], epoch: float) -> None:
    """Per-epoch metrics from the Trainer: `train_loss`, `val_loss`, `val_accuracy`, ..."""
    import mlflow

    if mlflow.active_run() is None:
        return
    resilient(lambda: _log_epoch(logs, epoch))


def _log_epoch(logs: dict[str, Any], epoch: float) -> None:
    import mlflow

    renamed = {}
    for key, value in logs.items():
        if not isinstance(value, int | float) or key == "epoch":
            continue
        if key == "loss":
            renamed["train_loss"] = value
        elif key.startswith("eval_") and not key.endswith(("_runtime", "_per_second")):
            renamed["val_" + key.removeprefix("eval_")] = value
    if renamed:
        mlflow.log_metrics(renamed, step=round(epoch))


@contextmanager
def quiet_mlflow() -> Iterator[None]:
    """Silence MLflow's advice about type hints and pickling while a model is logged: the
    signature is given explicitly and the pickled class is the project's own; and the progress
    bar of the few files it reads back to check the input example."""
    import logging
    import warnings

    loggers = [logging.getLogger(name) for name in ("mlflow.models.signature", "mlflow.pyfunc")]
    levels = [logger.level for logger in loggers]
    bar = os.environ.get(PROGRESS_BAR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        os.environ[PROGRESS_BAR] = "false"
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)
            if bar is None:
                os.environ.pop(PROGRESS_BAR, None)
            else:
                os.environ[PROGRESS_BAR] = bar


# MLflow's switch for the progress bars of artifact uploads and downloads.
PROGRESS_BAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"


def pip_requirements() -> list[str]:
    """Pinned to what this run used: listing them saves MLflow a slow inference of its own."""
    from importlib.metadata import PackageNotFoundError, version

    pins = []
    for name in PINNED_PACKAGES:
        try:
            pins.append(f"{name}=={version(name).split('+')[0]}")
        except PackageNotFoundError:
            continue
    return pins
