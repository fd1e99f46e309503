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
