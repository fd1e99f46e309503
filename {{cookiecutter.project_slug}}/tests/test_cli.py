import json

from typer.testing import CliRunner

from {{ cookiecutter.package_name }} import __version__
from {{ cookiecutter.package_name }}.cli import app

runner = CliRunner()


def test_info_names_the_task_and_version() -> None:
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    assert "task:     {{ cookiecutter.task }}" in result.output
    assert __version__ in result.output


def test_unknown_verb_fails_with_usage() -> None:
    result = runner.invoke(app, ["no-such-verb"])
    assert result.exit_code == 2
    assert "No such command" in result.output


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

    from {{ cookiecutter.package_name }}.config import PARAMS_FILE

    shutil.copy(PARAMS_FILE, tmp_path / "params.yaml")
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["train"])
    assert result.exit_code == 1
    assert result.output.strip() == (
        "error: data/prepared/train.parquet not found: run `prepare` first"
    )
    assert not (tmp_path / "models").exists()


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


def test_predict_prints_one_json_line_per_input(trained) -> None:
{%- if cookiecutter.task == 'text-classification' %}
    inputs = ["honestly the staff is really wonderful", "the food was not great"]
{%- else %}
    from {{ cookiecutter.package_name }}.config import EXAMPLES_DIR

    inputs = [str(path) for path in sorted(EXAMPLES_DIR.iterdir())[:2]]
{%- endif %}
    result = runner.invoke(app, ["predict", *inputs])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [line["input"] for line in lines] == inputs


def test_an_unreachable_tracking_server_stops_train_with_one_line(trained, monkeypatch) -> None:
    import socket

    from {{ cookiecutter.package_name }}.config import MODEL_DIR

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
