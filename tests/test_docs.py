"""The documentation site builds without a warning, and what the docs count matches the code."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from helpers import TEMPLATE_ROOT, cookiecutter_json, full_matrix, pairwise_matrix

sys.path.insert(0, str(TEMPLATE_ROOT / "scripts"))
import changelog

PAGES = [TEMPLATE_ROOT / "README.md", *sorted((TEMPLATE_ROOT / "docs").glob("*.md"))]
WORDS = {"three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9}


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    """--strict turns every warning into a failure: a broken link or anchor, a page missing from
    the nav, a benchmark file the hook cannot render."""
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=TEMPLATE_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    benchmarks = (tmp_path / "benchmarks" / "index.html").read_text(encoding="utf-8")
    assert "benchmark-tables" not in benchmarks
    for task in cookiecutter_json()["task"]:
        assert task in benchmarks, f"the newest benchmark has no first model of {task}"
    assert "Unreleased" in (tmp_path / "changelog" / "index.html").read_text(encoding="utf-8")


def stated(pattern: str) -> list[tuple[str, int]]:
    """Every number the pages state in `pattern` (digits or a word), with the page's name."""
    found = []
    for page in PAGES:
        text = " ".join(page.read_text(encoding="utf-8").split())
        for match in re.finditer(pattern, text, re.I):
            number = match["n"].replace(",", "").lower()
            if number.isdigit() or number in WORDS:
                found.append((page.name, WORDS.get(number) or int(number)))
    return found


@pytest.mark.parametrize(
    ("pattern", "actual"),
    [
        (r"\b(?P<n>\w+) tasks\b", lambda: len(cookiecutter_json()["task"])),
        (r"pairwise covering set of (?P<n>[\d,]+) combinations", lambda: len(pairwise_matrix())),
        (r"bakes all (?P<n>[\d,]+)", lambda: len(full_matrix())),
    ],
    ids=["tasks", "pairwise", "full-matrix"],
)
def test_the_counts_the_docs_state_match_the_code(pattern: str, actual) -> None:
    counts = stated(pattern)
    assert counts, f"no page states {pattern!r}: drop the row"
    assert all(n == actual() for _, n in counts), (counts, actual())


def test_every_task_has_a_row_in_the_readme_and_the_tasks_page() -> None:
    for page in ("README.md", "docs/tasks.md"):
        text = (TEMPLATE_ROOT / page).read_text(encoding="utf-8")
        for task in cookiecutter_json()["task"]:
            assert f"`{task}`" in text, f"{page} does not name {task}"


def test_the_readme_links_to_files_that_exist() -> None:
    text = (TEMPLATE_ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\((?!https?://)([^)#]+)", text)
    assert targets
    assert [target for target in targets if not (TEMPLATE_ROOT / target).is_file()] == []


def test_the_version_lives_in_the_changelog_only() -> None:
    text = changelog.CHANGELOG.read_text(encoding="utf-8")
    releases = changelog.releases(text)
    assert releases, "CHANGELOG.md has no release"
    assert "## [Unreleased]" in text.split(f"## [{releases[0][0]}]")[0]
    versions = [tuple(map(int, number.split("."))) for number, _, _ in releases]
    dates = [date for _, date, _ in releases]
    assert versions == sorted(versions, reverse=True), "newest release first"
    assert dates == sorted(dates, reverse=True), dates
    assert all(body for _, _, body in releases), "a release without notes"
    project = tomllib.loads((TEMPLATE_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    result = subprocess.run(
        [sys.executable, "scripts/changelog.py", "version"],
        cwd=TEMPLATE_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == releases[0][0]


def test_the_readme_quotes_the_newest_data_scale_benchmark() -> None:
    """A project's README reports how `prepare` and `train` grow with the data in the numbers of
    the newest benchmark run with `--data-rows` (docs/benchmarks/), not in numbers typed apart."""
    results = sorted((TEMPLATE_ROOT / "docs" / "benchmarks").glob("*.json"), reverse=True)
    scales = [json.loads(path.read_text(encoding="utf-8")).get("data_scale") for path in results]
    measured = [scale for scale in scales if scale]
    assert measured, "no docs/benchmarks/*.json has data_scale: run the benchmark with --data-rows"
    newest = measured[0]
    readme = (TEMPLATE_ROOT / "{{cookiecutter.project_slug}}" / "README.md").read_text("utf-8")
    assert f"capped at {newest['steps']} steps" in readme
    rows = re.findall(r"(?m)^\| [\d,]+ \| [\d.]+ s, \d+ MB \|", readme)
    assert len(rows) == len(newest["rows"]), rows
    for size, numbers in newest["rows"].items():
        row = (
            f"| {int(size):,} | {numbers['prepare_s']:.1f} s, {numbers['prepare_anon_mb']} MB "
            f"| {numbers['train_s']:.1f} s, {numbers['train_anon_mb']} MB |"
        )
        assert row in readme, row
