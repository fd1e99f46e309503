import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from {{ cookiecutter.package_name }} import __version__
from {{ cookiecutter.package_name }}.cli import app, entry_point
from {{ cookiecutter.package_name }}.core.paths import PARAMS_FILE
from {{ cookiecutter.package_name }}.tasks import task

runner = CliRunner()


def test_info_names_the_task_and_version() -> None:
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    assert "task:     {{ cookiecutter.task }}" in result.output
    assert __version__ in result.output


PROG = "{{ cookiecutter.package_name }}"
# Usage mistakes: exit 2, one line naming the verb, the option or the value, and where help is.
USAGE_MISTAKES = [
    (["no-such-verb"], "No such command 'no-such-verb'", PROG),
    (["train", "--epochs", "3"], "No such option: --epochs", f"{PROG} train"),
    (["serve", "--port", "0"], "Invalid value for '--port'", f"{PROG} serve"),
    (["serve", "--port", "http"], "Invalid value for '--port'", f"{PROG} serve"),
    (["bench", "--requests", "2"], "Invalid value for '--requests'", f"{PROG} bench"),
    (["bench", "--load-requests", "many"], "Invalid value for '--load-requests'", f"{PROG} bench"),
    (["predict"], "Missing argument 'inputs'", f"{PROG} predict"),
    (["reproduce"], "Missing argument 'run_id'", f"{PROG} reproduce"),
    # click reads the options before it enters the verb: the help it points to is the program's.
    (["evaluate", "--params"], "Option '--params' requires an argument", PROG),
    (
        ["reproduce", "abc", "--tolerance", "-1"],
        "Invalid value for '--tolerance'",
        f"{PROG} reproduce",
    ),
    (["prepare", "--source", "x.csv"], "No such option: --source", f"{PROG} prepare"),
    (["monitor", "--window", "7"], "No such option: --window", f"{PROG} monitor"),
    (["card", "--run"], "Option '--run' requires an argument", PROG),
    (["tune", "--trials", "0"], "Invalid value for '--trials'", f"{PROG} tune"),
    (["tune", "--trials", "many"], "Invalid value for '--trials'", f"{PROG} tune"),
    (["promote", "--run"], "Option '--run' requires an argument", PROG),
    (["export", "--format", "onnx"], "No such option: --format", f"{PROG} export"),
    (["sync-runs", "all"], "Got unexpected extra argument", f"{PROG} sync-runs"),
    (["rollback", "2"], "Got unexpected extra argument", f"{PROG} rollback"),
    (["shadow", "--candidate"], "Option '--candidate' requires an argument", PROG),
    (["gate", "--budget", "1"], "No such option: --budget", f"{PROG} gate"),
    (["harvest", "--count", "5"], "No such option: --count", f"{PROG} harvest"),
]
# What `export` says first where the task has nothing to export, before it looks for a model.
NOT_EXPORTED = "" if task.EXPORT_FORMAT else "{{ cookiecutter.task }} models are not exported"
# What `harvest` says first where the task is not labelled in Label Studio.
NOT_HARVESTED = "harvest: text to speech learns from recordings" if task.TARGET == "speech" else ""
# Inputs that are missing or wrong, in a project with no data, model or measurements yet:
# exit 1, one line naming the input and the fix.
INPUT_MISTAKES = [
    (["prepare", "--params", "nope.yaml"], "nope.yaml not found: run from the project root"),
    (["train", "--params", "nope.yaml"], "nope.yaml not found: run from the project root"),
    (["evaluate", "--params", "nope.yaml"], "nope.yaml not found: run from the project root"),
    (["train"], "data/prepared/train.parquet not found: run `prepare` first"),
    (["evaluate"], "models/model holds no trained model: run `train` first"),
    (["evaluate", "--model-dir", "nope"], "nope holds no trained model: run `train` first"),
    (["predict", "--model-dir", "nope", "x"], "nope holds no trained model: run `train` first"),
    (["serve", "--model-dir", "nope"], "nope holds no trained model: run `train` first"),
    (["bench", "--model-dir", "nope"], "nope holds no trained model: run `train` first"),
    (["bench", "--params", "nope.yaml"], "nope.yaml not found: run from the project root"),
    (["gate"], "bench.json not found: run `bench` first"),
    (["gate", "--params", "nope.yaml"], "nope.yaml not found: run from the project root"),
    (["monitor"], "monitoring holds 0 recorded requests, fewer than monitor.min_records"),
    (["monitor", "--params", "nope.yaml"], "nope.yaml not found: run from the project root"),
    (["card"], "models/model names no tracked run: train a model (make train) or pass --run"),
    (["card", "--run", "abc"], "no MLflow store at mlflow.db: run from the project root"),
    (["tune", "--params", "nope.yaml"], "nope.yaml not found: run from the project root"),
    (["promote"], "models/model names no tracked run: train a model (make train) or pass --run"),
    (["promote", "--run", "abc"], "no MLflow store at mlflow.db: run from the project root"),
    (["rollback"], "no MLflow store at mlflow.db: run from the project root"),
    (["shadow"], "monitoring holds no inputs kept in the last 30 days: set monitor.keep_inputs"),
    (["harvest"], NOT_HARVESTED or "monitoring holds no inputs kept in the last 30 days that"),
    (["export"], NOT_EXPORTED or "models/model holds no trained model: run `train` first"),
    (["export", "--model-dir", "nope"], NOT_EXPORTED or "nope holds no trained model: run `train`"),
    (["reproduce", "abc"], "reproduce needs the project's git and DVC repository: run `make init`"),
    (["sync-runs"], "MLFLOW_TRACKING_URI names no tracking server: set it to the server"),
]
# Verbs with nothing to get wrong: no option, no input.
TAKES_NOTHING = {"info"}


@pytest.mark.parametrize(("args", "named", "command"), USAGE_MISTAKES)
def test_every_usage_mistake_is_one_line_naming_it(args, named, command, capsys) -> None:
    assert entry_point(args) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert named in lines[0] and lines[0].endswith(f": see `{command} --help`"), lines[0]


@pytest.mark.parametrize(("args", "named"), INPUT_MISTAKES)
def test_every_input_mistake_is_one_line_naming_it(args, named, tmp_path, monkeypatch, capsys):
    shutil.copy(PARAMS_FILE, tmp_path / "params.yaml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")  # a new project's store
    assert entry_point(args) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], lines
    # Nothing written but the run lock (kept, as flock's files are; git ignores it).
    assert {path.name for path in tmp_path.iterdir()} <= {"params.yaml", ".flywheel.lock"}


def test_every_verb_has_its_rows_in_the_mistake_tables() -> None:
    """A new verb gets its rows: a usage mistake, and an input it lacks (README's
    troubleshooting section lists the lines)."""
    import typer.main

    group = typer.main.get_command(app)
    verbs = set(group.commands) - TAKES_NOTHING  # type: ignore[attr-defined]  # a click Group
    assert verbs - {args[0] for args, _, _ in USAGE_MISTAKES} == set()
    assert verbs - {args[0] for args, _ in INPUT_MISTAKES} == set()


def test_the_readme_troubleshooting_section_lists_every_input_mistake() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Troubleshooting", 1)[1].split("\n## ", 1)[0]
    for args, named in INPUT_MISTAKES:
        assert named in section, (args, named)


def test_a_bad_params_file_is_one_line_and_exit_1(tmp_path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("seed: 1\nsurprise: true\n", encoding="utf-8")
    result = runner.invoke(app, ["prepare", "--params", str(params)])
    assert result.exit_code == 1
    assert result.output.startswith("error: ")
    assert "Traceback" not in result.output


def test_predict_before_training_says_what_to_do(tmp_path) -> None:
    result = runner.invoke(app, ["predict", "--model-dir", str(tmp_path), "something"])
    assert result.exit_code == 1
    assert "run `train` first" in result.output


def test_train_before_prepare_says_what_to_do(tmp_path, monkeypatch) -> None:
    import shutil

    from {{ cookiecutter.package_name }}.core.paths import PARAMS_FILE

    shutil.copy(PARAMS_FILE, tmp_path / "params.yaml")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["train"])
    assert result.exit_code == 1
    assert result.output.strip() == (
        "error: data/prepared/train.parquet not found: run `prepare` first"
    )
    assert not (tmp_path / "models").exists()


def test_a_global_batch_that_does_not_split_over_the_processes_is_one_line(
    tmp_path, monkeypatch
) -> None:
    """`train.batch_size` is the global batch: under torchrun each process takes its share, and
    a batch the processes cannot share evenly stops `train` before it writes anything."""
    from {{ cookiecutter.package_name }}.core.config import load_params
    from {{ cookiecutter.package_name }}.training.device import per_process_batch

    batch = load_params().train.batch_size
    assert per_process_batch(batch, 1) == batch and per_process_batch(2 * batch, 2) == batch
    shutil.copy(PARAMS_FILE, tmp_path / "params.yaml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WORLD_SIZE", str(batch + 1))
    result = runner.invoke(app, ["train"])
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"error: train.batch_size: {batch} does not split evenly over {batch + 1} training "
        f"processes (WORLD_SIZE); use a multiple of {batch + 1}"
    )
    assert {path.name for path in tmp_path.iterdir()} <= {"params.yaml", ".flywheel.lock"}


def test_reproduce_outside_a_repository_is_one_line(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["reproduce", "0123456789abcdef"])
    assert result.exit_code == 1
    assert result.output.strip() == (
        "error: reproduce needs the project's git and DVC repository: run `make init`"
    )


def test_reproduce_names_an_unknown_run(trained, tmp_path, monkeypatch) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".dvc").mkdir()
    monkeypatch.chdir(tmp_path)  # the session's MLflow store stays the one asked
    result = runner.invoke(app, ["reproduce", "no-such-run"])
    assert result.exit_code == 1
    assert "RUN: no MLflow run 'no-such-run'" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_reproduce_without_a_tracking_store_creates_none(tmp_path, monkeypatch) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".dvc").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    result = runner.invoke(app, ["reproduce", "0123456789abcdef"])
    assert result.exit_code == 1
    assert result.output.startswith("error: no MLflow store at mlflow.db")
    assert not (tmp_path / "mlflow.db").exists()


def test_reproduce_names_how_this_environment_differs_from_the_run(trained, monkeypatch) -> None:
    """The run's own `environment.txt` against the packages installed now: nothing when they
    are the same; one line naming what changed, what was added and what is missing when not."""
    from {{ cookiecutter.package_name }}.lifecycle.reproduce import environment_difference
    from {{ cookiecutter.package_name }}.tracking import environment, runs

    run = runs.get_run(trained.result.run_id)
    assert environment_difference(run) is None
    now = dict(environment.installed(runs.EXPERIMENT))
    now["torch"] = "0.0.1"
    now["flywheel-probe"] = "1.0"
    del now["numpy"]
    monkeypatch.setattr(environment, "installed", lambda project: now)
    line = environment_difference(run)
    assert line is not None and "\n" not in line
    named = f"this environment differs from run {run.info.run_id}'s: torch 0.0.1 (run: "
    assert line.startswith(named)
    assert "flywheel-probe 1.0 (not in the run's), numpy missing (run: " in line
    assert line.endswith("the run had no committed uv.lock to install its environment from")


def test_predict_prints_one_json_line_per_input(trained) -> None:
    from {{ cookiecutter.package_name }}.core.paths import EXAMPLES_DIR

    if task.INPUT_KIND == "text":
        inputs = ["honestly the staff is really wonderful", "the food was not great"]
    else:
        inputs = [str(path) for path in sorted(EXAMPLES_DIR.iterdir())[:2]]
    result = runner.invoke(app, ["predict", *inputs])
    assert result.exit_code == 0, result.output
    # stdout: the JSON lines alone (a warning, e.g. of skipped characters, goes to stderr).
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["input"] for line in lines] == inputs


def test_an_unreachable_tracking_server_stops_train_with_one_line(trained, monkeypatch) -> None:
    import socket

    from {{ cookiecutter.package_name }}.core.paths import MODEL_DIR

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    weights = sorted(MODEL_DIR.iterdir())
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    result = runner.invoke(app, ["train"])
    assert result.exit_code == 1
    assert f"MLflow tracking server http://127.0.0.1:{port} is unreachable" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert sorted(MODEL_DIR.iterdir()) == weights


@pytest.mark.parametrize(
    "verb, section, key, value",
    [
        ("prepare", "data", "source", "hf:nobody/no-such-dataset"),
        ("train", "model", "pretrained", "nobody/no-such-model"),
    ],
)
def test_an_unreachable_hub_id_is_one_line(trained, tmp_path, verb, section, key, value) -> None:
    params = yaml.safe_load(PARAMS_FILE.read_text(encoding="utf-8"))
    params[section][key] = value
    changed = tmp_path / "params.yaml"
    changed.write_text(yaml.safe_dump(params), encoding="utf-8")
    # The Hub is switched off for the whole session (conftest.py), as without network.
    result = runner.invoke(app, [verb, "--params", str(changed)])
    assert result.exit_code == 1, result.output
    # Libraries may log their own warnings on the way; the error itself is one line.
    assert "Traceback" not in result.output, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.output
    assert errors[0].startswith(f"error: {section}.{key}: {value} cannot be loaded ("), errors[0]


def test_serve_without_a_trained_model_is_one_line(tmp_path) -> None:
    result = runner.invoke(app, ["serve", "--model-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.strip() == f"error: {tmp_path} holds no trained model: run `train` first"


def test_serve_on_a_port_in_use_says_so_before_loading_anything(tmp_path) -> None:
    """The port is checked first: the missing model of this folder is never reached."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["serve", "--port", str(port), "--model-dir", str(tmp_path)])
    assert result.exit_code == 1
    line = result.output.strip()
    assert line.startswith(f"error: --port {port}: cannot listen on 127.0.0.1:{port} ("), line
    assert "another --port" in line and "\n" not in line


def test_predict_names_an_input_it_cannot_read(trained, tmp_path) -> None:
    if task.INPUT_KIND == "text":
        value, expected = " ", "error: input: the text is empty"
    else:
        bad = tmp_path / ("notes.wav" if task.INPUT_KIND == "audio" else "notes.png")
        bad.write_text("not a recording or a picture", encoding="utf-8")
        value, expected = str(bad), f"error: {bad}: the file cannot be decoded as "
    result = runner.invoke(app, ["predict", value])
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert result.output.startswith(expected), result.output


def test_a_second_run_stops_at_once_and_names_the_first(tmp_path, monkeypatch) -> None:
    from {{ cookiecutter.package_name }}.core.runlock import exclusive

    monkeypatch.chdir(tmp_path)
    with exclusive("train"):
        for verb in ("prepare", "train", "evaluate"):
            result = runner.invoke(app, [verb])
            assert result.exit_code == 1, result.output
            assert result.output.strip() == (
                f"error: `train` (pid {os.getpid()}) is running in this project: "
                "wait for it to finish, or stop it"
            )
    assert not (tmp_path / "data").exists()


def test_the_lock_of_a_killed_run_is_taken_over(tmp_path, monkeypatch) -> None:
    from {{ cookiecutter.package_name }}.core.errors import FlywheelError
    from {{ cookiecutter.package_name }}.core.paths import LOCK_FILE
    from {{ cookiecutter.package_name }}.core.runlock import exclusive

    monkeypatch.chdir(tmp_path)
    with subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_LOCK, str(LOCK_FILE)], stdout=subprocess.PIPE, text=True
    ) as holder:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(FlywheelError, match="is running in this project"), exclusive("prepare"):
            pass
        holder.kill()  # SIGKILL: no clean-up runs
        holder.wait(timeout=30)
    with exclusive("prepare"):
        assert LOCK_FILE.read_text(encoding="utf-8") == f"`prepare` (pid {os.getpid()})"


HOLD_THE_LOCK = """
import fcntl, os, sys, time
lock = open(sys.argv[1], "a+")
fcntl.flock(lock, fcntl.LOCK_EX)
lock.write(f"`train` (pid {os.getpid()})")
lock.flush()
print("locked", flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("damage", ["missing", "altered"])
def test_a_damaged_model_folder_is_refused_in_one_line(trained, tmp_path, damage) -> None:
    from {{ cookiecutter.package_name }}.core.paths import (
        EXAMPLES_DIR,
        METRICS_FILE,
        MODEL_DIR,
    )

    model = tmp_path / "model"
    shutil.copytree(MODEL_DIR, model)
    weights = model / "model.safetensors"
    if damage == "missing":
        weights.unlink()
        expected = f"error: {model}: model.safetensors is missing: "
    else:
        altered = bytearray(weights.read_bytes())
        altered[-1] ^= 0xFF
        weights.write_bytes(bytes(altered))
        expected = f"error: {model}: model.safetensors differs from the file `train` saved"
    example = "good" if task.INPUT_KIND == "text" else str(sorted(EXAMPLES_DIR.iterdir())[0])
    metrics = METRICS_FILE.read_bytes()
    for verb in (["predict", example], ["evaluate"], ["serve"]):
        result = runner.invoke(app, [*verb, "--model-dir", str(model)])
        assert result.exit_code == 1, (verb, result.output)
        assert len(result.output.strip().splitlines()) == 1, (verb, result.output)
        assert result.output.startswith(expected), (verb, result.output)
    assert METRICS_FILE.read_bytes() == metrics
