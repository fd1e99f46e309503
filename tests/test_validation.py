"""Bad answers fail in both engines with one clear line naming the field and leave nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import bake_copier

BIN = Path(sys.executable).parent

BAD_ANSWERS = [
    pytest.param(
        {"project_slug": "torch"},
        "project_slug 'torch' shadows an existing Python module",
        id="slug-shadows-torch",
    ),
    pytest.param(
        {"project_slug": "json"},
        "project_slug 'json' shadows an existing Python module",
        id="slug-shadows-stdlib",
    ),
    pytest.param(
        {"project_slug": "class"}, "project_slug 'class' is a Python keyword", id="slug-keyword"
    ),
    pytest.param(
        {"project_slug": "My-Project"},
        "project_slug 'My-Project' must be lowercase ASCII",
        id="slug-not-identifier",
    ),
    pytest.param(
        {"project_slug": "3d_vision"},
        "project_slug '3d_vision' must be lowercase ASCII",
        id="slug-leading-digit",
    ),
    pytest.param(
        {"project_slug": "ok_slug", "package_name": "mlflow"},
        "package_name 'mlflow' shadows",
        id="package-shadows-mlflow",
    ),
    pytest.param(
        {"project_slug": "ok_slug", "package_name": "tests"},
        "package_name 'tests' shadows",
        id="package-shadows-tests",
    ),
    pytest.param(
        {"author_email": "jane.example.com"},
        "author_email 'jane.example.com' is not an email address",
        id="email-no-at",
    ),
    pytest.param(
        {"author_email": "jane@localhost"},
        "author_email 'jane@localhost' is not an email address",
        id="email-no-domain",
    ),
    pytest.param({"author_name": "  "}, "author_name must not be empty", id="empty-author"),
    pytest.param(
        {"project_name": " ", "project_slug": "ok_slug"},
        "project_name must not be empty",
        id="empty-name",
    ),
]


def as_cli_data(answers: dict[str, str]) -> list[str]:
    return [f"{key}={value}" for key, value in answers.items()]


@pytest.mark.parametrize(("answers", "message"), BAD_ANSWERS)
def test_cookiecutter_rejects(
    answers: dict[str, str], message: str, template: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    result = subprocess.run(
        [
            BIN / "cookiecutter",
            "--no-input",
            "--default-config",
            "--output-dir",
            out,
            template,
            *as_cli_data(answers),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert f"ERROR: {message}" in result.stderr
    # Only the refusals, one line each: no traceback of the failed hook after them.
    lines = result.stderr.strip().splitlines()
    assert all(line.startswith("ERROR: ") for line in lines), result.stderr
    assert list(out.iterdir()) == []


@pytest.mark.parametrize(("answers", "message"), BAD_ANSWERS)
def test_copier_rejects(
    answers: dict[str, str], message: str, template: Path, tmp_path: Path
) -> None:
    dst = tmp_path / "project"
    data = [arg for pair in as_cli_data(answers) for arg in ("--data", pair)]
    result = subprocess.run(
        [BIN / "copier", "copy", "--defaults", "--vcs-ref", "HEAD", *data, template, dst],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    field = message.split()[0]
    assert f"Validation error for question '{field}': {message}" in result.stderr
    assert not dst.exists()


def test_copier_rejects_a_task_of_another_modality(template: Path, tmp_path: Path) -> None:
    dst = tmp_path / "project"
    result = subprocess.run(
        [
            BIN / "copier",
            "copy",
            "--defaults",
            "--vcs-ref",
            "HEAD",
            "--data",
            "modality=vision",
            "--data",
            "task=speech-recognition",
            template,
            dst,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "Invalid choice for 'task'" in result.stderr
    assert not dst.exists()


def test_cookiecutter_rejects_an_unknown_choice(template: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            BIN / "cookiecutter",
            "--no-input",
            "--default-config",
            "--output-dir",
            tmp_path,
            template,
            "cloud=ibm",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "cloud" in result.stderr and "ibm" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_non_ascii_name_bakes_an_ascii_slug_in_both_engines(
    template: Path, cookies, tmp_path: Path
) -> None:
    answers = {"project_name": "Détection d'objets", "author_name": "Zoë Ñúñez"}
    result = cookies.bake(extra_context=answers, template=str(template))
    assert result.exit_code == 0, result.exception
    assert result.project_path.name == "detection_d_objets"
    copier_project = bake_copier(template, answers, tmp_path / "detection_d_objets")
    recorded = yaml.safe_load((copier_project / ".copier-answers.yml").read_text(encoding="utf-8"))
    assert recorded["project_slug"] == recorded["package_name"] == "detection_d_objets"
    assert (result.project_path / "LICENSE").read_text(encoding="utf-8") == (
        copier_project / "LICENSE"
    ).read_text(encoding="utf-8")
    assert "Zoë Ñúñez" in (copier_project / "pyproject.toml").read_text(encoding="utf-8")


def next_steps(output: str, destination: Path) -> list[str]:
    """The lines from "<slug> is ready" on, with the project's folder as DST."""
    lines = output.replace(str(destination), "DST").splitlines()
    start = next(i for i, line in enumerate(lines) if " is ready (" in line)
    return [line for line in lines[start:] if line.strip()]


def test_both_engines_print_the_same_next_steps(template: Path, tmp_path: Path) -> None:
    """copier prints copier.yml's `_message_after_copy`; the cookiecutter hook renders the same."""
    baked = subprocess.run(
        [BIN / "cookiecutter", "--no-input", "--output-dir", tmp_path / "cc", template],
        capture_output=True,
        text=True,
        check=False,
    )
    copied = subprocess.run(
        [BIN / "copier", "copy", "--defaults", "--vcs-ref", "HEAD", template, tmp_path / "cp"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert baked.returncode == 0, baked.stderr
    assert copied.returncode == 0, copied.stderr
    steps = next_steps(baked.stdout, tmp_path / "cc" / "flywheel_demo")
    assert steps == next_steps(copied.stderr, tmp_path / "cp")  # copier writes it to stderr
    assert steps[:3] == [
        "flywheel_demo is ready (text-classification). Next:",
        "  cd DST",
        "  make setup     # the environment, from uv.lock (the first run writes it: commit it)",
    ]
    # Every command it names is one the project's Makefile has.
    makefile = (tmp_path / "cp" / "Makefile").read_text(encoding="utf-8")
    for line in steps:
        if line.strip().startswith("make "):
            assert f"\n{line.split()[1]}:" in makefile, line
