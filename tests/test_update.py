"""The update story: bake with cookiecutter at an old tag, edit as a user, then `copier update`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import copier
import pytest
import yaml
from helpers import TEMPLATE_DIR_NAME, TEMPLATE_ROOT, Baked, git, snapshot_template, template_files
from project_env import env_with

ANSWERS = {"project_name": "Update Me", "use_docker": "no", "cloud": "none", "ci": "github"}


def quickstart_line(template: Path) -> str:
    """The README line that both the user and the next release change (a real conflict)."""
    readme = (template / TEMPLATE_DIR_NAME / "README.md").read_text(encoding="utf-8")
    return next(line for line in readme.splitlines() if line.startswith("make setup"))


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def release_v0_2_0(template: Path) -> None:
    """A later template release: new Makefile target, changed README line, a new question whose
    file is excluded by default, and a Docker change the project did not select."""
    tree = template / TEMPLATE_DIR_NAME
    edit(tree / "Makefile", ".PHONY: help", "hello: ## Say hello\n\t@echo hello\n\n.PHONY: help")
    edit(tree / "README.md", quickstart_line(template), "make setup      # (template v0.2.0)")
    edit(tree / "Dockerfile", "WORKDIR /app", "WORKDIR /srv")
    (tree / "docs" / "telemetry.md").write_text("# Telemetry\n", encoding="utf-8")
    (tree / "docs" / "upgrading.md").write_text("# Upgrading\n", encoding="utf-8")
    edit(
        template / "copier.yml",
        "# --- computed values (never asked",
        'telemetry:\n  type: str\n  help: Send telemetry\n  choices: ["yes", "no"]\n'
        '  default: "no"\n\n# --- computed values (never asked',
    )
    edit(
        template / "copier.yml",
        "'__modality': modality}",
        "'__modality': modality, 'telemetry': telemetry}",
    )
    edit(
        template / "copier.yml",
        "_exclude:\n",
        "_exclude:\n  - |-\n    {% if cookiecutter.get('telemetry', 'no') == 'no' %}"
        "/docs/telemetry.md{% endif %}\n",
    )
    edit(
        template / "cookiecutter.json",
        '  "__modality"',
        '  "telemetry": ["no", "yes"],\n  "__modality"',
    )
    edit(
        template / "cookiecutter.json",
        '"ci": "Continuous integration"',
        '"ci": "Continuous integration",\n    "telemetry": "Send telemetry"',
    )
    git("add", "--all", cwd=template)
    git("commit", "--quiet", "--message=v0.2.0", cwd=template)
    git("tag", "v0.2.0", cwd=template)


@pytest.fixture(scope="module")
def updated(tmp_path_factory: pytest.TempPathFactory, cookies_session) -> tuple[Baked, str]:
    template = snapshot_template(tmp_path_factory.mktemp("template"))
    git("tag", "v0.1.0", cwd=template)
    result = cookies_session.bake(extra_context=ANSWERS, template=str(template))
    assert result.exit_code == 0, result.exception
    project = Baked(result.project_path)
    git("init", "--quiet", "--initial-branch=main", cwd=project.path)
    git("add", "--all", cwd=project.path)
    git("commit", "--quiet", "--message=baked with cookiecutter", cwd=project.path)

    package = project.path / "src" / "update_me"
    (package / "features.py").write_text("def add_one(x: int) -> int:\n    return x + 1\n")
    with (project.path / "docs" / "decisions.md").open("a", encoding="utf-8") as notes:
        notes.write("\n## Our own decision\nWe keep this.\n")
    line = quickstart_line(template)
    edit(project.path / "README.md", line, "make setup      # our team's own set-up notes")
    git("add", "--all", cwd=project.path)
    git("commit", "--quiet", "--message=user edits", cwd=project.path)

    release_v0_2_0(template)
    copier.run_update(
        str(project.path),
        defaults=True,
        overwrite=True,
        quiet=True,
        conflict="inline",
        unsafe=True,  # the template's migrations (copier asks for --trust)
    )
    return project, git("status", "--porcelain", cwd=project.path)


def test_answers_record_the_old_tag_then_the_new_one(updated: tuple[Baked, str]) -> None:
    project, _ = updated
    answers = yaml.safe_load(project.text(".copier-answers.yml"))
    assert answers["_commit"] == "v0.2.0"
    assert answers["telemetry"] == "no"  # a new question gets its default
    first = git("show", "HEAD~1:.copier-answers.yml", cwd=project.path)
    assert yaml.safe_load(first)["_commit"] == "v0.1.0"


def test_template_changes_arrived(updated: tuple[Baked, str]) -> None:
    project, _ = updated
    assert "hello: ## Say hello" in project.text("Makefile")
    assert (project.path / "docs" / "upgrading.md").is_file()


def test_user_edits_survived(updated: tuple[Baked, str]) -> None:
    project, _ = updated
    assert "return x + 1" in project.text("src/update_me/features.py")
    assert "## Our own decision" in project.text("docs/decisions.md")


def test_conflicting_edit_is_marked_inline(updated: tuple[Baked, str]) -> None:
    project, status = updated
    readme = project.text("README.md")
    assert "<<<<<<< before updating" in readme
    assert "our team's own set-up notes" in readme
    assert "(template v0.2.0)" in readme
    assert ">>>>>>> after updating" in readme
    assert "README.md" in status


def test_no_file_of_an_unselected_option_appeared(updated: tuple[Baked, str]) -> None:
    project, _ = updated
    for unselected in ("Dockerfile", ".dockerignore", "infra", "docs/telemetry.md"):
        assert not (project.path / unselected).exists(), unselected


def test_no_rejected_hunk_is_left_and_the_project_still_collects(
    updated: tuple[Baked, str], project_bin: Path
) -> None:
    project, _ = updated
    assert not list(project.path.rglob("*.rej"))
    env = env_with(project_bin, project.path)
    collected = project.run("python", "-m", "pytest", "--collect-only", "-q", env=env)
    assert collected.returncode == 0, collected.stdout[-3000:] + collected.stderr[-3000:]
    assert re.search(r"^\d+ tests collected", collected.stdout, re.M), collected.stdout[-2000:]


def test_the_drift_workflow_lists_the_conflict_for_its_pull_request(
    updated: tuple[Baked, str], tmp_path: Path
) -> None:
    """The weekly workflow's own step, run as GitHub runs it, on the updated project: the
    conflicted file goes into the pull request's description instead of failing the job."""
    project, _ = updated
    workflow = yaml.safe_load(project.text(".github/workflows/template-drift.yml"))
    [step] = [step for step in workflow["jobs"]["update"]["steps"] if step.get("id") == "conflicts"]
    output = tmp_path / "github_output"
    run = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
        cwd=project.path,
        env={**os.environ, "GITHUB_OUTPUT": str(output)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert output.read_text(encoding="utf-8").splitlines() == [
        "files<<CONFLICTS",
        "./README.md",
        "CONFLICTS",
    ]


# The previous release, 0.1.0 (the commit that gave CHANGELOG.md its `## [0.1.0]`): a project
# baked from it, whose user changed values in params.yaml, added files and edited the task module,
# must update across the regrouping of 0.2.0 cleanly, with the edited module kept and reported.
PREVIOUS_RELEASE = "9798e8c"
VALUE_EDITS = {
    "seed: 42": "seed: 7",
    "  learning_rate: 0.002": "  learning_rate: 0.001",
    "  max_model_size_mb: 100": "  max_model_size_mb: 50",
}


def commit_tree(template: Path, tag: str) -> None:
    git("add", "--all", cwd=template)
    git("commit", "--quiet", f"--message={tag}", cwd=template)
    git("tag", tag, cwd=template)


@pytest.mark.slow
def test_a_project_from_the_previous_release_with_value_edits_updates_cleanly(
    tmp_path: Path, cookies_session, project_bin: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    template = tmp_path / "template"
    template.mkdir()
    archive = subprocess.run(
        ["git", "archive", PREVIOUS_RELEASE], cwd=TEMPLATE_ROOT, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(template)], input=archive, check=True)
    git("init", "--quiet", "--initial-branch=main", cwd=template)
    commit_tree(template, "v0.1.0")
    result = cookies_session.bake(
        extra_context={"project_name": "Value Edits"}, template=str(template)
    )
    assert result.exit_code == 0, result.exception
    project = Baked(result.project_path)
    git("init", "--quiet", "--initial-branch=main", cwd=project.path)
    commit_tree(project.path, "baked")
    for old, new in VALUE_EDITS.items():
        edit(project.path / "params.yaml", old, new)
    (project.path / "src" / "value_edits" / "features.py").write_text("FEATURES = 3\n")
    (project.path / "notes").mkdir()
    (project.path / "notes" / "runs.md").write_text("# Our runs\n")
    old_module = project.path / "src" / "value_edits" / "tasks" / "text_classification.py"
    with old_module.open("a", encoding="utf-8") as module:
        module.write("\n\nOUR_TWEAK = 1\n")
    commit_tree(project.path, "user-values")

    for name in git("ls-files", cwd=template).splitlines():
        (template / name).unlink()
    for name in template_files():
        (template / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(TEMPLATE_ROOT / name, template / name)
    commit_tree(template, "v0.2.0")
    capfd.readouterr()
    copier.run_update(
        str(project.path),
        defaults=True,
        overwrite=True,
        quiet=True,
        conflict="inline",
        unsafe=True,
    )
    reported = [line for line in capfd.readouterr().out.splitlines() if "edited" in line]

    changed = git("status", "--porcelain", cwd=project.path)
    assert not list(project.path.rglob("*.rej")), changed
    marked = [p for p in project.path.rglob("*") if p.is_file() and b"<<<<<<<" in p.read_bytes()]
    assert marked == [], changed
    params = project.text("params.yaml")
    for new in VALUE_EDITS.values():
        assert new in params
    assert "early_stopping_patience:" in params and "min_margin_over_baseline:" in params
    package = project.path / "src" / "value_edits"
    assert (package / "training" / "baselines.py").is_file()
    assert not (package / "baselines.py").exists(), "an unedited module that moved is gone"
    # The edited task module: kept where it was, named in one line with where the template's is.
    kept = old_module.read_text(encoding="utf-8")
    assert kept.startswith("# copier update kept this module: you edited it, and the template ")
    assert "OUR_TWEAK = 1" in kept
    assert reported == [
        "src/value_edits/tasks/text_classification.py: your edited module is kept here; the "
        "template moved it to src/value_edits/tasks/text_classification/task.py: carry your "
        "edits over, then delete this file"
    ]
    assert project.text("src/value_edits/features.py") == "FEATURES = 3\n"
    assert project.text("notes/runs.md") == "# Our runs\n"
    loaded = project.run(
        "python",
        "-c",
        "from value_edits.core.config import load_params; print(load_params().seed)",
        env=env_with(project_bin, project.path),
    )
    assert loaded.returncode == 0 and loaded.stdout.strip() == "7", loaded.stderr
    # ... and still trains, in the new layout, with the user's values (one epoch: it runs, not
    # how well; the generated suite judges that).
    edit(project.path / "params.yaml", "  epochs: 8", "  epochs: 1")
    for verb in ("prepare", "train"):
        run = project.run(
            "python", "-m", "value_edits", verb, env=env_with(project_bin, project.path)
        )
        assert run.returncode == 0, run.stderr[-2000:]
    assert (package.parent.parent / "models" / "model").is_dir()
