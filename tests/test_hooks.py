"""Unit tests of the cookiecutter hooks' module (hooks/flywheel_hooks.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pathspec
import pytest
import yaml
from copier._main import _pathspec_pattern  # the pattern flavour copier itself uses
from helpers import TEMPLATE_ROOT

sys.path.insert(0, str(TEMPLATE_ROOT / "hooks"))
import flywheel_hooks

PATHS = [
    "Dockerfile",
    ".dockerignore",
    "infra",
    "infra/terraform/main.tf",
    "infrastructure.md",
    "docs/infra",
    ".github/workflows/ci.yml",
    "src/pkg/__pycache__/cli.cpython-311.pyc",
    "src/pkg/tasks/audio_classification.py",
    "src/pkg/tasks/image_classification.py",
    "tests/data/Dockerfile",
]
PATTERNS = [
    "/Dockerfile",
    "/infra",
    "/infra/",
    "/.github",
    "__pycache__",
    "*.py[co]",
    "/src/*/tasks/audio_classification",
    "/src/*/tasks/*_classification.py",
]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_matches_agrees_with_copier_pathspec(pattern: str) -> None:
    spec = pathspec.PathSpec.from_lines(_pathspec_pattern, [pattern])
    for path in PATHS:
        expected = spec.match_file(path) or (pattern.endswith("/") and spec.match_file(path + "/"))
        assert flywheel_hooks.matches(path, pattern) == expected, path


@pytest.mark.parametrize("pattern", ["**/Dockerfile", "!keep.py", "src/pkg/x.py"])
def test_patterns_outside_the_subset_fail_loudly(pattern: str) -> None:
    with pytest.raises(flywheel_hooks.HookError, match="_exclude rule"):
        flywheel_hooks.matches("src/pkg/x.py", pattern)


def test_exclude_rules_render_from_answers() -> None:
    config = flywheel_hooks.load_config(TEMPLATE_ROOT)
    cookiecutter = {
        "use_docker": "no",
        "ci": "github",
        "cloud": "none",
        "task": "speech-recognition",
    }
    patterns = flywheel_hooks.exclude_patterns({"cookiecutter": cookiecutter}, config)
    assert "/Dockerfile" in patterns and "/infra" in patterns
    assert "/.github" not in patterns
    assert "/src/*/tasks/text_classification" in patterns
    assert "/src/*/tasks/classification.py" in patterns
    assert "/src/*/tasks/speech_recognition" not in patterns


def test_excluded_paths_lists_matches_outermost_only(tmp_path: Path) -> None:
    for name in [
        "Dockerfile",
        "infra/terraform/main.tf",
        "src/pkg/cli.py",
        "src/pkg/__pycache__/x.pyc",
    ]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    excluded = flywheel_hooks.excluded_paths(tmp_path, ["/Dockerfile", "/infra", "__pycache__"])
    assert excluded == ["Dockerfile", "infra", "src/pkg/__pycache__"]


def test_validation_errors_name_every_bad_field() -> None:
    config = flywheel_hooks.load_config(TEMPLATE_ROOT)
    answers = {
        "project_name": "X",
        "project_slug": "torch",
        "package_name": "torch",
        "description": "d",
        "author_name": "",
        "author_email": "nope",
        "task": "text-classification",
        "__modality": "nlp",
        "python_version": "3.11",
        "license": "MIT",
        "cloud": "none",
        "use_docker": "yes",
        "ci": "github",
    }
    errors = flywheel_hooks.validation_errors(
        flywheel_hooks.copier_context(answers, config), config
    )
    assert [error.split()[0] for error in errors] == [
        "project_slug",
        "package_name",
        "author_name",
        "author_email",
    ]
    assert all("\n" not in error and "pass" in error for error in errors)


def test_answers_text_is_copier_yaml_with_header() -> None:
    config = {"a_question": {"type": "str"}, "hidden": {"when": False}}
    text = flywheel_hooks.answers_text({"a_question": "yes"}, config, "/tpl", "v1.0.0")
    assert text.startswith(flywheel_hooks.ANSWERS_HEADER)
    assert yaml.safe_load(text) == {"_commit": "v1.0.0", "_src_path": "/tpl", "a_question": "yes"}
    assert "a_question: 'yes'" in text  # quoted: YAML would read a bare yes as a boolean


def test_src_path_is_absolute_for_local_templates_and_as_typed_for_urls(tmp_path: Path) -> None:
    assert flywheel_hooks.src_path_for(str(tmp_path), tmp_path) == str(tmp_path)
    assert flywheel_hooks.src_path_for("../relative/template", tmp_path) == str(tmp_path)
    for url in ["gh:example/ml-flywheel", "https://github.com/example/ml-flywheel.git"]:
        assert flywheel_hooks.src_path_for(url, tmp_path) == url
