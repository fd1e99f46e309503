"""`tune`: a small Optuna study on the embedded data, its MLflow child runs, its resumption after
an interrupted trial, and the best values written as a reviewable diff of params.yaml."""

import mlflow
import optuna
import pytest
import yaml
from typer.testing import CliRunner

from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.core.config import load_params
from {{ cookiecutter.package_name }}.core.paths import BEST_PARAMS_FILE, TUNE_DIR
from {{ cookiecutter.package_name }}.tracking.runs import EXPERIMENT
from {{ cookiecutter.package_name }}.training.tune import STUDY_FILE, best_params_text


@pytest.fixture(scope="module")
def study_dir(trained, tmp_path_factory):
    """A folder with the session's prepared data and params.yaml cut to a 1-epoch budget and a
    one-parameter search, where `tune` ran a 3-trial study."""
    root = tmp_path_factory.mktemp("tune")
    (root / "data").symlink_to(trained.workspace / "data")
    raw = yaml.safe_load((trained.workspace / "params.yaml").read_text(encoding="utf-8"))
    raw["train"]["epochs"] = 1
    rate = raw["train"]["learning_rate"]
    raw["tune"] = {
        "trials": 3,
        "search_space": {"train.learning_rate": {"low": rate / 4, "high": rate * 4, "log": True}},
    }
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        result = CliRunner().invoke(app, ["tune"])
    assert result.exit_code == 0, result.output
    return root, result.output


def _study(root):
    [summary] = optuna.get_all_study_summaries(f"sqlite:///{root / TUNE_DIR / STUDY_FILE}")
    return optuna.load_study(
        study_name=summary.study_name, storage=f"sqlite:///{root / TUNE_DIR / STUDY_FILE}"
    )


def _children(parent_id):
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name(EXPERIMENT)
    return client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_id}'"
    )


def test_a_study_runs_its_trials_as_child_runs_and_writes_the_best_values(study_dir) -> None:
    root, output = study_dir
    study = _study(root)
    states = [trial.state.name for trial in study.trials]
    assert len(states) == 3 and set(states) <= {"COMPLETE", "PRUNED"}, states
    assert "COMPLETE" in states
    for number in range(3):
        assert f"trial {number}: " in output
    # The first trial is params.yaml's own values: the best is measured against them.
    assert study.trials[0].params == {
        "train.learning_rate": load_params(root / "params.yaml").train.learning_rate
    }
    parent_id = study.user_attrs["mlflow_run_id"]
    children = _children(parent_id)
    assert len(children) == 3
    assert {run.data.tags["tune.trial"] for run in children} == {"0", "1", "2"}
    assert all("train.learning_rate" in run.data.params for run in children)

    best = load_params(root / BEST_PARAMS_FILE)
    assert best.train.learning_rate == study.best_trial.params["train.learning_rate"]
    before = (root / "params.yaml").read_text(encoding="utf-8").splitlines()
    after = (root / BEST_PARAMS_FILE).read_text(encoding="utf-8").splitlines()
    changed = [(old, new) for old, new in zip(before, after, strict=True) if old != new]
    assert all(old.strip().startswith("learning_rate:") for old, _ in changed), changed


def test_an_interrupted_study_resumes_with_the_trials_still_owed(study_dir, monkeypatch) -> None:
    root, _ = study_dir
    study = _study(root)
    parent_id = study.user_attrs["mlflow_run_id"]
    study.ask()  # what a killed `tune` leaves behind: a trial that started and never finished
    monkeypatch.chdir(root)
    result = CliRunner().invoke(app, ["tune", "--trials", "4"])
    assert result.exit_code == 0, result.output
    assert "1 trial(s) cut short marked failed" in result.output
    assert "3 of 4 trials done, 1 to run" in result.output
    states = [trial.state.name for trial in _study(root).trials]
    assert states.count("FAIL") == 1 and len(states) == 5, states
    # The same parent run holds the new trial.
    assert len(_children(parent_id)) == 4


def test_apply_writes_the_best_values_into_params_yaml(study_dir, monkeypatch) -> None:
    root, _ = study_dir
    monkeypatch.chdir(root)
    result = CliRunner().invoke(app, ["tune", "--apply"])
    assert result.exit_code == 0, result.output
    assert (root / "params.yaml").read_text() == (root / BEST_PARAMS_FILE).read_text()


def test_an_unknown_search_key_is_one_line_and_runs_nothing(trained, tmp_path, monkeypatch) -> None:
    raw = yaml.safe_load((trained.workspace / "params.yaml").read_text(encoding="utf-8"))
    raw["tune"] = {"search_space": {"train.learning_rat": {"low": 0.001, "high": 0.01}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["tune"])
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert "tune.search_space: train.learning_rat is not a parameter" in line
    assert "did you mean train.learning_rate?" in line
    assert not (tmp_path / TUNE_DIR).exists()


def test_best_values_replace_only_their_own_lines() -> None:
    source = "train:\n  epochs: 8  # a budget\n  learning_rate: 0.002\nserve:\n  epochs: 1\n"
    text = best_params_text(source, {"train.epochs": 3, "train.learning_rate": 0.01})
    assert text == "train:\n  epochs: 3  # a budget\n  learning_rate: 0.01\nserve:\n  epochs: 1\n"


def test_a_trial_left_running_before_its_first_heartbeat_is_failed(tmp_path, monkeypatch) -> None:
    """Optuna fails trials whose heartbeats stopped, never one that had none (a worker stopped
    between a trial's start and its first beat): one that has not opened its MLflow run in time
    is failed, one that has is left to its heartbeats."""
    import optuna
    from optuna.trial import TrialState

    from {{ cookiecutter.package_name }}.training import tune as tuning

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}")
    unstarted = study.ask()
    started = study.ask()
    started.set_user_attr("mlflow_run_id", "a run")
    tuning._fail_unstarted(study)  # both started a moment ago
    assert {t.state for t in study.trials} == {TrialState.RUNNING}
    monkeypatch.setattr(tuning, "UNSTARTED_TRIAL_SECONDS", 0)
    tuning._fail_unstarted(study)
    states = {t.number: t.state for t in study.trials}
    assert states == {unstarted.number: TrialState.FAIL, started.number: TrialState.RUNNING}
