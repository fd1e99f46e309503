"""The template repository's own code and configuration pass the checks it asks of projects."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import TASKS, TEMPLATE_DIR_NAME, TEMPLATE_ROOT

# ruff, mypy and codespell read their settings from pyproject.toml, as the pre-commit hooks do.
CODE_CHECKS = {
    "lint": ["ruff", "check", "--no-cache", "hooks", "scripts", "tests"],
    "format": ["ruff", "format", "--check", "--no-cache", "hooks", "scripts", "tests"],
    "types": ["mypy"],
    "spelling": ["codespell"],
}


@pytest.mark.parametrize("command", CODE_CHECKS.values(), ids=CODE_CHECKS.keys())
def test_template_code_passes_its_checks(command: list[str]) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).with_name(command[0])), *command[1:]],
        cwd=TEMPLATE_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_repo_review_passes_on_the_template() -> None:
    from validators import repo_review_failures

    assert repo_review_failures(TEMPLATE_ROOT) == []


def test_pre_commit_config_is_valid() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pre_commit", "validate-config", ".pre-commit-config.yaml"],
        cwd=TEMPLATE_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_own_workflows_pass_the_validators_projects_get() -> None:
    from validators import workflow_problems

    workflows = sorted((TEMPLATE_ROOT / ".github" / "workflows").glob("*.yml"))
    assert workflows, "the template has no workflow"
    assert workflow_problems(TEMPLATE_ROOT, workflows) == []


def test_own_devcontainer_passes_its_schema_and_runs_make_setup() -> None:
    from validators import devcontainer_problems

    assert devcontainer_problems(TEMPLATE_ROOT) == []
    config = json.loads((TEMPLATE_ROOT / ".devcontainer" / "devcontainer.json").read_text())
    assert config["postCreateCommand"] == "make setup"


def test_own_pyproject_is_valid() -> None:
    from validators import pyproject_problems

    assert pyproject_problems(TEMPLATE_ROOT) == []


def test_one_uv_release_everywhere() -> None:
    """The suite, `make setup`, the generated CI workflow and the Dockerfile install with the same
    uv, so a behaviour seen in one is the behaviour of all."""
    project = TEMPLATE_ROOT / TEMPLATE_DIR_NAME
    pins = {
        "Makefile": r"^UV_VERSION := (\S+)$",
        "pyproject.toml": r'"uv==([^"]+)"',
        f"{TEMPLATE_DIR_NAME}/Makefile": r"^UV_VERSION \?= (\S+)$",
        f"{TEMPLATE_DIR_NAME}/pyproject.toml": r'"uv==([^"]+)"',
        f"{TEMPLATE_DIR_NAME}/deploy/skypilot/train.yaml": r'"uv==([^"]+)"',
        f"{TEMPLATE_DIR_NAME}/.github/workflows/template-drift.yml": r'"uv==([^"]+)"',
        f"{TEMPLATE_DIR_NAME}/Dockerfile": r"^ARG UV_VERSION=(\S+)$",
        f"{TEMPLATE_DIR_NAME}/.github/workflows/ci.yml": r'^\s+UV_VERSION: "([^"]+)"$',
    }
    assert project.is_dir()
    found = {}
    for path, pattern in pins.items():
        found[path] = re.findall(pattern, (TEMPLATE_ROOT / path).read_text(encoding="utf-8"), re.M)
    assert all(len(versions) == 1 for versions in found.values()), found
    assert len({versions[0] for versions in found.values()}) == 1, found


def test_a_task_without_its_facts_stops_the_suite_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The template's tests read each task's facts from its folder's facts.yaml: a task the
    questions offer without one (or without a key) stops the suite where they are read, instead
    of counting silently as some other kind of task."""
    import helpers

    monkeypatch.setattr(helpers, "TASKS_DIR", tmp_path / "tasks")
    (tmp_path / "tasks" / "speech_to_text").mkdir(parents=True)
    with pytest.raises(LookupError, match=r"tasks/speech_to_text/facts\.yaml: missing"):
        helpers.task_facts("speech-to-text")
    (tmp_path / "tasks" / "speech_to_text" / "facts.yaml").write_text("primary_metric: wer\n")
    with pytest.raises(
        LookupError, match=r"facts\.yaml: no metrics, helpers, real_data, real_data\.source, "
    ):
        helpers.task_facts("speech-to-text")


def test_copy_without_render_lists_exactly_the_files_without_jinja() -> None:
    """Cookiecutter copies the files in `_copy_without_render` instead of compiling them (a tenth
    of a bake). Copier renders every file, so a listed file that gains Jinja would bake
    differently under the two engines, and an unlisted plain file only costs time."""
    from helpers import cookiecutter_json

    project = TEMPLATE_ROOT / TEMPLATE_DIR_NAME
    without_jinja = {
        path.relative_to(project).as_posix()
        for path in project.rglob("*")
        if path.is_file()
        and not re.search(r"\{[{%#]", path.read_text(encoding="utf-8"))
        and not re.search(
            r"\{[{%#]",
            path.relative_to(project).as_posix().replace("{{cookiecutter.package_name}}", ""),
        )
    }
    listed = cookiecutter_json()["_copy_without_render"]
    assert listed == sorted(listed), "keep _copy_without_render sorted"
    assert not set(listed) - without_jinja, "listed, but holds Jinja (or is gone): remove it"
    assert not without_jinja - set(listed), "plain files to add to _copy_without_render"


GROUPED = """
import pytest

@pytest.mark.xdist_group("together")
@pytest.mark.parametrize("n", range(4))
def test_grouped(n):
    pass
"""


def test_xdist_groups_keep_their_tests_on_one_worker(tmp_path: Path) -> None:
    """The suite relies on `--dist loadgroup` (the speech projects, the real-data corpus, the text
    project's README sections): a pytest or pytest-xdist that breaks it fails here, not as a slow
    suite."""
    (tmp_path / "test_grouped.py").write_text(GROUPED, encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-n",
            "2",
            "--dist",
            "loadgroup",
            "-v",
            "-p",
            "no:cacheprovider",
            str(tmp_path),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    workers = re.findall(r"^\[(gw\d+)\] .*PASSED", result.stdout, re.M)
    assert len(workers) == 4 and len(set(workers)) == 1, result.stdout


def test_the_suite_environment_is_pinned_and_a_stale_pin_is_named() -> None:
    """The generated projects' tests run in an environment installed from tests/project-env.txt;
    a requirement the pins do not satisfy stops the suite with the command that pins again."""
    from project_env import LOCK_COMMAND, ensure_project_env, pinned, uncovered

    pins = pinned()
    assert pins["torch"].endswith("+cpu") and "mlflow" in pins and "transformers" in pins
    assert uncovered(["torch>=2.4,<3", "uvloop>=0.19; sys_platform == 'win32'"], pins) == []
    stale = ["numpy>=99", "not-a-pinned-package>=1"]
    assert uncovered(stale, pins) == stale
    with pytest.raises(RuntimeError, match=re.escape(f"run `{LOCK_COMMAND}`")):
        ensure_project_env(stale)


def test_own_lock_matches_pyproject() -> None:
    """`make setup` installs the template's tools with `uv sync --locked` from uv.lock, which must
    answer pyproject.toml as it is now (checked offline)."""
    uv = Path(sys.executable).with_name("uv")
    run = subprocess.run(
        [str(uv), "lock", "--locked", "--offline"],
        cwd=TEMPLATE_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr


def test_every_task_folder_offers_the_same_bake_time_names() -> None:
    """The shared params.yaml, pyproject.toml and docs/decisions.md read a task's values from its
    folder's bake.jinja; a name one task lacks would fail only that task's bakes, so all must
    define the same ones."""
    package = TEMPLATE_ROOT / TEMPLATE_DIR_NAME / "src" / "{{cookiecutter.package_name}}"
    defined = {
        folder.parent.name: set(
            re.findall(r"\{%-? (?:set|macro) (\w+)", folder.read_text(encoding="utf-8"))
        )
        for folder in sorted(package.glob("tasks/*/bake.jinja"))
    }
    assert sorted(defined) == sorted(task.replace("-", "_") for task in TASKS)
    used, importing = set(), []
    project = TEMPLATE_ROOT / TEMPLATE_DIR_NAME
    for shared in sorted(project.rglob("*")):
        inside = shared.relative_to(project).as_posix()
        if shared.is_file() and not inside.startswith("src/{{cookiecutter.package_name}}/tasks/"):
            text = shared.read_text(encoding="utf-8")
            if "/bake.jinja' as task with context" in text.split("\n", 1)[0]:
                importing.append(inside)
                for jinja in re.findall(r"\{[{%].*?[}%]\}", text, re.S):
                    used |= set(re.findall(r"\btask\.(\w+)", jinja))
    assert importing == [
        "Dockerfile",
        "Makefile",
        "README.md",
        "docs/decisions.md",
        "dvc.yaml",
        "params.yaml",
        "pyproject.toml",
    ]
    for folder, names in defined.items():
        assert names == used, (folder, sorted(names ^ used))


# Files that name a task without a new task needing them: history (the changelog, dated
# benchmark results, the migration that moved the modules), this guide, and the hooks' unit tests,
# which use task paths as sample data.
NAMES_A_TASK_AS_HISTORY = (
    "CHANGELOG.md",
    "docs/benchmarks",
    "docs/adding-a-task.md",
    "migrations/",
)
NAMES_A_TASK_AS_DATA = ("tests/test_hooks.py",)


def test_the_guide_lists_every_file_a_task_touches() -> None:
    """docs/adding-a-task.md's list against the files that name the plainest task (no special
    case in shared code): a per-task table added anywhere else fails here until the guide names
    it. tests/real_data.py holds the task's maker without naming the task."""
    from helpers import template_files

    guide = (TEMPLATE_ROOT / "docs" / "adding-a-task.md").read_text(encoding="utf-8")
    block = guide.split("<!-- task-files -->")[1].split("<!-- /task-files -->")[0]
    listed = {line.split()[0] for line in block.splitlines() if line and not line.startswith("`")}
    task = re.compile(r"audio[-_]classification")
    prefix = f"{TEMPLATE_DIR_NAME}/"
    named = set()
    for name in template_files():
        if name.startswith(NAMES_A_TASK_AS_HISTORY + NAMES_A_TASK_AS_DATA):
            continue
        text = (TEMPLATE_ROOT / name).read_text(encoding="utf-8", errors="replace")
        if task.search(name) or task.search(text):
            named.add(
                task.sub("<task>", name.removeprefix(prefix)).replace(
                    "{{cookiecutter.package_name}}", "<package>"
                )
            )
    assert named | {"tests/real_data.py"} == listed
