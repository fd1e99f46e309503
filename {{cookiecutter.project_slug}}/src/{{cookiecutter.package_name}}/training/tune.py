"""`tune`: an Optuna search over params.yaml values, judged on the validation split.

The search space and the trial budget are the `tune` section of params.yaml. Each trial trains
with the project's own `build_trainer` and is an MLflow child run under one parent run; a trial
whose per-epoch validation score falls behind the median of earlier trials at the same epoch is
pruned. The study lives in SQLite (`tuning/study.db`): after an interruption, `tune` resumes it,
marking the trial that was cut short as failed, and runs only the trials still owed. With
`tune.storage` (a database), workers on several machines share the study and its budget; a worker
that stops beating has its trial failed, and owed again. The best
values are written to `params.best.yaml` (params.yaml with those values changed, so a diff shows
them); `--apply` writes them into params.yaml itself. The test split is never looked at.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..core import gc_pause
from ..core.config import Params
from ..core.errors import FlywheelError
from ..core.paths import BEST_PARAMS_FILE, TUNE_DIR
from ..tasks import task
from ..tracking import runs

STUDY_FILE = "study.db"
# Trials finished before the median pruner judges others, and epochs each trial gets first.
PRUNER_STARTUP_TRIALS = 2
PRUNER_WARMUP_EPOCHS = 1


@dataclass(frozen=True)
class TuneResult:
    study: str
    trials_run: int
    finished: int
    pruned: int
    best_value: float
    best_values: dict[str, Any]
    default_value: float | None  # the trial with params.yaml's own values, when one ran
    parent_run_id: str | None
    diff: str


def _checked_space(params: Params) -> dict[str, Any]:
    """The search space, each key a parameter params.yaml has (not one of `tune` itself)."""
    known = {key for key in params.flat() if not key.startswith("tune.")}
    for key, space in params.tune.search_space.items():
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise FlywheelError(
                f"tune.search_space: {key} is not a parameter of params.yaml: {hint}"
                "use section.key names (e.g. train.learning_rate)"
            )
        if space.low is not None and space.high is not None and space.low >= space.high:
            raise FlywheelError(f"tune.search_space.{key}: low must be below high")
    return params.tune.search_space


def _suggest(trial: Any, key: str, space: Any, current: Any) -> Any:
    """A value for `key`: one of its choices, or a number in its range, an integer where the
    parameter is one in params.yaml."""
    if space.choices is not None:
        return trial.suggest_categorical(key, space.choices)
    if isinstance(current, int) and not isinstance(current, bool):
        return trial.suggest_int(key, int(space.low), int(space.high), log=space.log)
    return trial.suggest_float(key, space.low, space.high, log=space.log)


def with_values(params: Params, values: dict[str, Any]) -> Params:
    """`params` with `section.key` values replaced, validated as params.yaml is."""
    tree = params.model_dump(mode="json")
    for key, value in values.items():
        section, name = key.split(".", 1)
        tree[section][name] = value
    try:
        return Params.model_validate(tree)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise FlywheelError(
            f"tune.search_space gives {where} a value params.yaml does not accept "
            f"({first['msg']}): narrow its range or choices"
        ) from None


def _study_name(params: Params, space: dict[str, Any]) -> str:
    """One study per search space, base parameters and data: changing any of them starts anew
    (a different `tune.trials` continues the same study)."""
    from ..data.prepare import data_hash

    digest = hashlib.sha256(
        json.dumps([params.fingerprinted(), _plain(space), data_hash()], sort_keys=True).encode()
    )
    return f"{runs.EXPERIMENT}-{digest.hexdigest()[:12]}"


def _pruning_reporter(trial: Any) -> Any:
    from transformers import TrainerCallback

    metric = f"eval_{task.JUDGING.selection_metric}"

    class ReportToOptuna(TrainerCallback):
        pruned = False

        def on_evaluate(
            self, args: Any, state: Any, control: Any, metrics: Any = None, **kwargs: Any
        ) -> None:
            if not metrics or metric not in metrics:
                return
            trial.report(metrics[metric], step=round(state.epoch or 0))
            if trial.should_prune():
                self.pruned = True
                control.should_training_stop = True

    return ReportToOptuna()


def _objective(params: Params, space: dict[str, Any], splits: dict[str, Any], tags: dict[str, str]):
    import optuna
    from transformers import set_seed

    from .train import build_trainer

    current = params.flat()

    def objective(trial: Any) -> float:
        values = {key: _suggest(trial, key, space[key], current[key]) for key in space}
        trial_params = with_values(params, values)
        set_seed(trial_params.seed, deterministic=True)
        reporter = _pruning_reporter(trial)
        with (
            tempfile.TemporaryDirectory() as scratch,
            runs.tracked_run(f"trial {trial.number}", trial_params.flat(), tags) as run,
        ):
            trial.set_user_attr("mlflow_run_id", run.info.run_id)
            trainer, _, _ = build_trainer(trial_params, splits, scratch, [reporter])
            trainer.train()
            best = trainer.state.best_metric
            runs.set_trial_outcome(trial.number, best, reporter.pruned)
        if reporter.pruned:
            raise optuna.TrialPruned(f"validation {task.JUDGING.selection_metric} behind")
        return best

    return objective


def _mark_interrupted(study: Any) -> int:
    """Trials a killed `tune` left running are failed: they are not counted, and run again."""
    from optuna.trial import TrialState

    stale = [trial for trial in study.trials if trial.state == TrialState.RUNNING]
    for trial in stale:
        study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
    return len(stale)


def _storage(params: Params) -> tuple[Any, bool]:
    """The study's storage, and whether other workers may share it: the local SQLite file, or
    `tune.storage` with heartbeats, so that a lost worker's trial is failed and run again."""
    import optuna

    if params.tune.storage is None:
        TUNE_DIR.mkdir(exist_ok=True)
        return f"sqlite:///{TUNE_DIR / STUDY_FILE}", False
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    beat = params.tune.heartbeat_seconds
    try:
        for attempt in range(3):
            try:
                storage = optuna.storages.RDBStorage(
                    params.tune.storage, heartbeat_interval=beat, grace_period=3 * beat
                )
                break
            except (IntegrityError, ProgrammingError):
                # Workers started together on an empty database race to create its tables.
                if attempt == 2:
                    raise
                time.sleep(1 + attempt)
    except Exception as error:  # the URL, its driver or the server: Optuna's error names which
        from sqlalchemy.engine import make_url

        try:
            shown = make_url(params.tune.storage).render_as_string(hide_password=True)
        except Exception:
            shown = "its URL"
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else "no reason"
        raise FlywheelError(
            f"tune.storage: {shown} cannot be opened ({type(error).__name__}: {reason}): "
            "check the URL, the server, and its driver (make setup EXTRAS=team for PostgreSQL)"
        ) from None
    return storage, True


# A shared study's MLflow run is opened by one worker; the others wait this long for its id:
# what a worker takes to load the data and the libraries and reach the tracking server, with room.
PARENT_RUN_WAIT_SECONDS = 120


def _claims_study_run(storage: Any, name: str) -> bool:
    """Whether this worker opens the shared study's MLflow run: the database lets one worker
    create a study of this name, a claim that holds for workers started at the same moment."""
    import optuna

    try:
        optuna.create_study(study_name=f"{name} mlflow run", storage=storage)
    except optuna.exceptions.DuplicatedStudyError:
        return False
    return True


def _opened_elsewhere(study: Any) -> str | None:
    """The MLflow run id another worker recorded for the study, once it has; None if it has not
    within PARENT_RUN_WAIT_SECONDS (it stopped first: this worker opens a run of its own)."""
    deadline = time.monotonic() + PARENT_RUN_WAIT_SECONDS
    while time.monotonic() < deadline:
        if run_id := study.user_attrs.get("mlflow_run_id"):
            return str(run_id)
        time.sleep(0.5)
    return None


# Optuna fails a trial whose heartbeats stopped, never one that had none: a worker stopped between
# the start of a trial and its first heartbeat leaves it running for good. A trial that has not
# opened its MLflow run (its first step, seconds in) this long after it started is failed too.
UNSTARTED_TRIAL_SECONDS = 60


def _fail_unstarted(study: Any) -> None:
    import datetime

    from optuna.trial import TrialState

    now = datetime.datetime.now()  # Optuna records trial starts in local time, without a zone
    for running in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        started = running.datetime_start
        if "mlflow_run_id" in running.user_attrs or started is None:
            continue
        if (now - started).total_seconds() > UNSTARTED_TRIAL_SECONDS:
            # Another worker may have failed it meanwhile.
            study.tell(running.number, state=TrialState.FAIL, skip_if_finished=True)


def _stop_when_spent(total: int, beat: int | None) -> Any:
    """Stops this worker once the study's finished trials fill its budget, so that workers
    sharing a study (`beat`: their heartbeat, None for the one local worker) spend it once. While
    the other workers' running trials would fill it, this one waits: they finish, or a lost
    worker's trial misses its heartbeats, is failed, and this worker runs it again."""
    import optuna
    from optuna.trial import TrialState

    counted = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)

    def callback(study: Any, trial: Any) -> None:
        while True:
            if beat is not None:
                optuna.storages.fail_stale_trials(study)
                _fail_unstarted(study)
            trials = study.get_trials(deepcopy=False, states=counted)
            finished = sum(t.state != TrialState.RUNNING for t in trials)
            if len(trials) < total:
                return  # room for another trial here
            if beat is None or finished >= total:
                study.stop()
                return
            time.sleep(beat)

    return callback


def best_params_text(source: str, values: dict[str, Any]) -> str:
    """params.yaml's text with `section.key` values replaced in place: comments and order kept,
    so a diff shows exactly the tuned lines."""
    lines = source.splitlines(keepends=True)
    for key, value in values.items():
        section, name = key.split(".", 1)
        start = next(
            (
                i
                for i, line in enumerate(lines)
                if re.match(rf"{re.escape(section)}:\s*(#.*)?$", line)
            ),
            None,
        )
        pattern = re.compile(rf"^(\s+{re.escape(name)}:\s*)([^#\n]*?)(\s*#.*)?$")
        for index in range(start + 1 if start is not None else len(lines), len(lines)):
            if lines[index].strip() and not lines[index].startswith((" ", "#")):
                break  # the next section
            found = pattern.match(lines[index].rstrip("\n"))
            if found:
                written = json.dumps(value) if not isinstance(value, float) else repr(value)
                lines[index] = f"{found[1]}{written}{found[3] or ''}\n"
                break
        else:
            raise FlywheelError(f"{key} is not written in params.yaml: add it before tuning it")
    return "".join(lines)


def _defaults_within(params: Params, space: dict[str, Any]) -> dict[str, Any]:
    """params.yaml's values of the searched keys, those inside their range or choices."""
    current = params.flat()
    return {
        key: current[key]
        for key, searched in space.items()
        if (
            current[key] in searched.choices
            if searched.choices is not None
            else searched.low <= current[key] <= searched.high
        )
    }


def _plain(space: dict[str, Any]) -> dict[str, Any]:
    return {key: searched.model_dump(exclude_none=True) for key, searched in space.items()}


def _trial_line(trial: Any) -> str:
    """One line per finished trial: its score, or the epoch it was pruned at, and its values."""
    values = ", ".join(
        f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
        for key, value in trial.params.items()
    )
    metric = f"validation {task.JUDGING.selection_metric}"
    if trial.state.name == "PRUNED":
        epoch = trial.last_step
        outcome = f"pruned after epoch {epoch} ({metric} {trial.intermediate_values[epoch]:.6g})"
    else:
        outcome = f"{metric} {trial.value:.6g}"
    return f"trial {trial.number}: {outcome} ({values})"


def echo(line: str) -> None:
    print(line, flush=True)


def tune(
    params: Params, params_file: Path, trials: int | None = None, apply: bool = False
) -> TuneResult:
    import optuna
    from optuna.trial import TrialState
    from transformers.utils import logging as transformers_logging

    from ..data.prepare import data_hash, load_prepared
    from .train import selection_greater_is_better

    space = _checked_space(params)
    if not space:
        raise FlywheelError("tune.search_space is empty: name the parameters to search")
    total = trials or params.tune.trials
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # a line per trial comes from here
    # Heartbeats and failing stale trials are marked experimental in Optuna 4 and 5.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    transformers_logging.disable_progress_bar()
    name = _study_name(params, space)
    storage, shared = _storage(params)
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        load_if_exists=True,
        direction="maximize" if selection_greater_is_better() else "minimize",
        sampler=optuna.samplers.TPESampler(seed=params.seed),
        pruner=optuna.pruners.MedianPruner(
            n_startup_trials=PRUNER_STARTUP_TRIALS, n_warmup_steps=PRUNER_WARMUP_EPOCHS
        ),
    )
    if shared:  # other workers' trials run too: only those without a heartbeat are failed
        optuna.storages.fail_stale_trials(study)
    elif interrupted := _mark_interrupted(study):
        echo(f"resuming study {name}: {interrupted} trial(s) cut short marked failed")
    if not study.trials:
        # The first trial is params.yaml's own values, so the best is measured against them.
        study.enqueue_trial(_defaults_within(params, space), skip_if_exists=True)
    done = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    running = sum(t.state == TrialState.RUNNING for t in study.trials)
    owed = max(total - len(done) - running, 0)
    elsewhere = f", {running} running elsewhere" if running else ""
    echo(f"study {name}: {len(done)} of {total} trials done{elsewhere}, {owed} to run")
    splits = load_prepared()
    tags = runs.lineage_tags(data_hash()) | {"tune.study": name}
    settings = {"tune.trials": total, "tune.search_space": json.dumps(_plain(space))}
    resume = study.user_attrs.get("mlflow_run_id")
    if shared and resume is None and not _claims_study_run(storage, name):
        echo(f"study {name}: waiting for the worker that opens its MLflow run")
        resume = _opened_elsewhere(study)
    with runs.tracked_run("tune", params.flat() | settings, tags, resume=resume) as parent:
        if parent is not None:
            study.set_user_attr("mlflow_run_id", parent.info.run_id)
        gc_pause.resume()  # the libraries are loaded: collect again, without rescanning them
        study.optimize(
            _objective(params, space, splits, tags),
            # A shared study's budget is the callback's to keep: a worker may run a lost one's.
            n_trials=None if shared and owed else owed,
            callbacks=[
                lambda study, trial: echo(_trial_line(trial)),
                _stop_when_spent(total, params.tune.heartbeat_seconds if shared else None),
            ],
        )
        result = _result(study, params, params_file, owed, parent)
        runs.log_study(result.best_value, result.best_values, result.finished, result.pruned)
    if apply:
        params_file.write_text(BEST_PARAMS_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    return result


def _result(study: Any, params: Params, params_file: Path, ran: int, parent: Any) -> TuneResult:
    from optuna.trial import TrialState

    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    if not complete:
        raise FlywheelError(
            "no trial finished (all pruned or failed): raise tune.trials or widen the search"
        )
    best = study.best_trial
    source = params_file.read_text(encoding="utf-8")
    best_text = best_params_text(source, best.params)
    BEST_PARAMS_FILE.write_text(best_text, encoding="utf-8")
    diff = "".join(
        difflib.unified_diff(
            source.splitlines(keepends=True),
            best_text.splitlines(keepends=True),
            str(params_file),
            str(BEST_PARAMS_FILE),
        )
    )
    default = next((t.value for t in complete if t.number == 0), None)
    return TuneResult(
        study=study.study_name,
        trials_run=ran,
        finished=len(complete),
        pruned=sum(t.state == TrialState.PRUNED for t in study.trials),
        best_value=best.value,
        best_values=best.params,
        default_value=default,
        parent_run_id=parent.info.run_id if parent is not None else None,
        diff=diff,
    )
