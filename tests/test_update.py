"""The update story: bake with cookiecutter at an old tag, edit as a user, then `copier update`."""

from __future__ import annotations

from pathlib import Path

import copier
import pytest
import yaml
from helpers import TEMPLATE_DIR_NAME, Baked, git, snapshot_template

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
        str(project.path), defaults=True, overwrite=True, quiet=True, conflict="inline"
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
