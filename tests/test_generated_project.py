"""Each task's generated project trains, passes its own checks, and its README works as written."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from helpers import Baked, cookiecutter_json
from project_env import ensure_project_env, env_with, project_requirements

TASKS = cookiecutter_json()["task"]


def readme_commands(readme: str, section: str) -> list[str]:
    """The shell lines of the first bash block under a README heading, comments stripped."""
    match = re.search(rf"^## {re.escape(section)}\n.*?```bash\n(.*?)```", readme, re.S | re.M)
    assert match, f"no bash block under '## {section}'"
    lines = [re.sub(r"\s+#\s.*$", "", line).strip() for line in match.group(1).splitlines()]
    return [line for line in lines if line]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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
def test_readme_workflow_and_own_checks(
    task: str, projects: dict[str, Baked], project_bin: Path
) -> None:
    """The Quick start as written (the shared environment stands in for `make setup`), then the
    project's own lint and test suite."""
    project = projects[task]
    env = env_with(project_bin, project.path)
    commands = readme_commands(project.text("README.md"), "Quick start")
    assert commands[0] == "make setup"
    for command in [*commands[1:], "make lint", "make info"]:
        run = project.run("bash", "-c", command, env=env, timeout=900)
        assert run.returncode == 0, f"{command}\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}"
        if command == "make predict":
            predictions = [
                json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")
            ]
            assert predictions, run.stdout
    metrics = json.loads(project.text("metrics.json"))
    assert set(metrics) >= (
        {"wer", "cer"} if task == "speech-recognition" else {"accuracy", "f1_macro"}
    )
    assert (project.path / "mlflow.db").is_file()
    assert (project.path / "models" / "model" / "config.json").is_file()


@pytest.mark.slow
def test_readme_serve_section_works(projects: dict[str, Baked], project_bin: Path) -> None:
    """`make serve` as written, and the README's curl line against it (on a free port)."""
    project = projects["text-classification"]
    env = env_with(project_bin, project.path)
    if not (project.path / "models" / "model" / "config.json").is_file():
        assert project.run("make", "train", env=env, timeout=900).returncode == 0
    port = free_port()
    [serve] = readme_commands(project.text("README.md"), "Serve")
    assert serve == "make serve"
    server = subprocess.Popen(
        ["make", "serve", f"PORT={port}"],
        cwd=project.path,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as reply:
                    assert json.load(reply)["status"] == "ok"
                    break
            except OSError:
                assert server.poll() is None, "the server exited"
                assert time.monotonic() < deadline, "the server did not answer /health"
                time.sleep(0.5)
        readme = project.text("README.md")
        curl = readme.split("From another terminal:", 1)[1]
        [command] = readme_commands("## Serve\n" + curl, "Serve")
        run = project.run("bash", "-c", command.replace(":8000", f":{port}"), env=env)
        assert run.returncode == 0, run.stderr
        [prediction] = json.loads(run.stdout)["predictions"]
        assert prediction["label"] in {"negative", "positive"}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


@pytest.mark.slow
def test_readme_setup_installs_the_project_on_its_own(
    tmp_path: Path, template: Path, cookies
) -> None:
    """On a bare project, `make setup` as written builds .venv from the generated pyproject."""
    result = cookies.bake(template=str(template))
    assert result.exit_code == 0, result.exception
    project = Baked(result.project_path)
    run = project.run("make", "setup", timeout=1500)
    assert run.returncode == 0, f"{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    info = project.run("make", "info")
    assert info.returncode == 0 and ".venv/bin/python" in info.stdout
    check = project.run(
        ".venv/bin/python",
        "-c",
        "import torch, transformers, mlflow, fastapi; print(torch.__version__)",
    )
    assert check.returncode == 0, check.stderr


def test_makefile_help_lists_every_readme_target(projects: dict[str, Baked]) -> None:
    project = projects[TASKS[0]]
    help_text = project.run("make").stdout
    for command in readme_commands(project.text("README.md"), "Quick start"):
        assert command.startswith("make ")
        assert command.split()[1] in help_text
