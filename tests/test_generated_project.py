"""Each task's generated project passes its own checks; its README's commands work as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import Baked, cookiecutter_json
from project_env import ensure_project_env, env_with, project_requirements

TASKS = cookiecutter_json()["task"]


def readme_commands(readme: str, section: str) -> list[str]:
    """The shell lines of the first bash block under a README heading, comments stripped."""
    match = re.search(rf"^## {re.escape(section)}\n.*?```bash\n(.*?)```", readme, re.S | re.M)
    assert match, f"no bash block under '## {section}'"
    lines = [line.split("#")[0].strip() for line in match.group(1).splitlines()]
    return [line for line in lines if line]


@pytest.fixture(scope="session")
def projects(template: Path, cookies_session) -> dict[str, Baked]:
    baked = {}
    for task in TASKS:
        result = cookies_session.bake(
            extra_context={"task": task, "project_name": f"Demo {task}"}, template=str(template)
        )
        assert result.exit_code == 0, result.exception
        baked[task] = Baked(result.project_path)
    return baked


@pytest.fixture(scope="session")
def project_bin(projects: dict[str, Baked]) -> Path:
    return ensure_project_env(project_requirements(p.path for p in projects.values()))


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_generated_checks_pass(task: str, projects: dict[str, Baked], project_bin: Path) -> None:
    project = projects[task]
    for target in ("lint", "test", "info"):
        result = project.run("make", target, env=env_with(project_bin, project.path))
        assert result.returncode == 0, f"make {target}\n{result.stdout}\n{result.stderr}"
    assert f"task:     {task}" in result.stdout


@pytest.mark.slow
def test_readme_quick_start_runs_as_written(tmp_path: Path, template: Path, cookies) -> None:
    """On a bare project: the Quick start block, line by line, including `make setup`."""
    result = cookies.bake(template=str(template))
    assert result.exit_code == 0, result.exception
    project = Baked(result.project_path)
    commands = readme_commands(project.text("README.md"), "Quick start")
    assert commands[0] == "make setup"
    for command in commands:
        run = project.run("bash", "-c", command, timeout=900)
        assert run.returncode == 0, f"{command}\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    assert (project.path / ".venv" / "bin" / "python").is_file()


def test_makefile_help_lists_every_readme_target(projects: dict[str, Baked]) -> None:
    project = projects[TASKS[0]]
    help_text = project.run("make").stdout
    for command in readme_commands(project.text("README.md"), "Quick start"):
        if command.startswith("make "):
            assert command.split()[1] in help_text
