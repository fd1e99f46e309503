"""Helpers of the template's tests: the option matrix, template snapshots, bakes by both engines."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import copier
import jinja2
import yaml

TEMPLATE_ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_DIR_NAME = "{{cookiecutter.project_slug}}"


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# Where the suite's processes keep their bytecode (conftest.py sets PYTHONPYCACHEPREFIX): written
# on first import, so only the modules some test imports are compiled, once per source file, and
# no baked project's tree gains a __pycache__ folder.
PYCACHE = TEMPLATE_ROOT / ".cache" / "pycache"


def uv_install(python: Path, requirements: Iterable[str]) -> None:
    """Install into the environment of `python` with uv (the template's dev tool): seconds where
    pip takes minutes. Not compiled at install: the suite's processes import about a fifth of
    the project environment's 24,000 modules, and compile those into PYCACHE on first use."""
    uv = Path(sys.executable).with_name("uv")
    command = [str(uv), "pip", "install", "--quiet", "--python", str(python)]
    subprocess.run([*command, *requirements], check=True)


# Options whose every value the matrix covers; free-text questions keep their defaults.
MATRIX_OPTIONS = ("task", "python_version", "license", "cloud", "use_docker", "ci")

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Flywheel Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Flywheel Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def cookiecutter_json(root: Path = TEMPLATE_ROOT) -> dict[str, Any]:
    return json.loads((root / "cookiecutter.json").read_text(encoding="utf-8"))


TASKS: list[str] = cookiecutter_json()["task"]
TASKS_DIR = TEMPLATE_ROOT / TEMPLATE_DIR_NAME / "src" / "{{cookiecutter.package_name}}" / "tasks"
FACT_KEYS = ("primary_metric", "metrics", "helpers", "real_data")
REAL_DATA_KEYS = ("source", "make", "classes", "bad_files")


def task_facts(task: str) -> dict[str, Any]:
    """What the template's tests know of a task, from its folder's `facts.yaml`: a task without
    the file, or without a key, stops the suite where it is read, naming both."""
    path = TASKS_DIR / task.replace("-", "_") / "facts.yaml"
    shown = path.relative_to(TEMPLATE_ROOT) if path.is_relative_to(TEMPLATE_ROOT) else path
    if not path.is_file():
        raise LookupError(f"{shown}: missing (every task declares one)")
    facts = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    missing = [key for key in FACT_KEYS if key not in facts]
    missing += [
        f"real_data.{key}" for key in REAL_DATA_KEYS if key not in facts.get("real_data", {})
    ]
    if missing:
        raise LookupError(f"{shown}: no {', '.join(missing)}")
    return facts


FACTS = {task: task_facts(task) for task in TASKS}


def primary_metric(task: str) -> str:
    """The primary metric of the task's metrics.json (the generated `task.JUDGING` names it)."""
    return FACTS[task]["primary_metric"]


def copier_yml(root: Path = TEMPLATE_ROOT) -> dict[str, Any]:
    return yaml.safe_load((root / "copier.yml").read_text(encoding="utf-8"))


def option_values() -> dict[str, list[str]]:
    context = cookiecutter_json()
    return {name: list(context[name]) for name in MATRIX_OPTIONS}


def copier_task_choices(modality: str) -> list[str]:
    """The task choices copier offers once `modality` is answered (its choices are templated)."""
    source = copier_yml()["task"]["choices"]
    rendered = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(source)
    return list(yaml.safe_load(rendered.render(modality=modality)).values())


def modality_of(task: str) -> str:
    for modality in copier_yml()["modality"]["choices"].values():
        if task in copier_task_choices(modality):
            return modality
    raise KeyError(task)


def combination_id(combination: Mapping[str, str]) -> str:
    parts = []
    for name in MATRIX_OPTIONS:
        value = combination[name]
        if name == "python_version":
            value = f"py{value}"
        elif name == "use_docker":
            value = "docker" if value == "yes" else "nodocker"
        elif name == "ci":
            value = "ci-github" if value == "github" else "noci"
        elif name == "cloud":
            value = f"cloud-{value}"
        parts.append(value)
    return "-".join(parts)


def full_matrix() -> list[dict[str, str]]:
    values = option_values()
    return [dict(zip(values, combo, strict=True)) for combo in itertools.product(*values.values())]


def pairwise_matrix() -> list[dict[str, str]]:
    """A deterministic covering set in which every pair of option values appears at least once."""
    values = option_values()
    names = list(values)
    uncovered = {
        (a, va, b, vb)
        for a, b in itertools.combinations(names, 2)
        for va in values[a]
        for vb in values[b]
    }
    candidates = full_matrix()
    pairs = list(itertools.combinations(names, 2))
    chosen: list[dict[str, str]] = []

    def newly_covered(combo: dict[str, str]) -> int:
        return sum((a, combo[a], b, combo[b]) in uncovered for a, b in pairs)

    while uncovered:
        best = max(candidates, key=newly_covered)
        chosen.append(best)
        uncovered -= {(a, best[a], b, best[b]) for a, b in pairs}
    return chosen


def git(*args: str, cwd: Path) -> str:
    result = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def template_files(root: Path = TEMPLATE_ROOT) -> list[str]:
    """Files of the working tree git would commit (tracked, or untracked and not ignored)."""
    listing = git("ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=root)
    return sorted({name for name in listing.split("\0") if name and (root / name).exists()})


def snapshot_template(dest: Path, source: Path = TEMPLATE_ROOT) -> Path:
    """Copy the working tree of the template into a fresh git repository with one commit."""
    for name in template_files(source):
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / name, target)
    git("init", "--quiet", "--initial-branch=main", cwd=dest)
    git("add", "--all", cwd=dest)
    git("commit", "--quiet", "--message=template snapshot", cwd=dest)
    return dest


def copier_data(answers: Mapping[str, str]) -> dict[str, str]:
    data = dict(answers)
    if "task" in data and "modality" not in data:
        data["modality"] = modality_of(data["task"])
    return data


def bake_copier(template: Path, answers: Mapping[str, str], dst: Path, **kwargs: Any) -> Path:
    copier.run_copy(
        str(template),
        str(dst),
        data=copier_data(answers),
        defaults=True,
        quiet=True,
        vcs_ref=kwargs.pop("vcs_ref", "HEAD"),
        **kwargs,
    )
    return dst


@dataclass(frozen=True)
class Baked:
    """A baked project, with the few questions the tests ask of it."""

    path: Path

    def files(self) -> set[str]:
        return {p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if p.is_file()}

    def tree(self) -> dict[str, tuple[int, bytes]]:
        """Every file and folder with its permission bits and contents (folders: empty bytes)."""
        return {
            p.relative_to(self.path).as_posix(): (
                stat.S_IMODE(p.stat().st_mode),
                p.read_bytes() if p.is_file() else b"",
            )
            for p in sorted(self.path.rglob("*"))
        }

    def text(self, relpath: str) -> str:
        return (self.path / relpath).read_text(encoding="utf-8")

    def run(
        self, *cmd: str, env: Mapping[str, str] | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(cmd),
            cwd=self.path,
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def text_files(paths: Iterable[Path]) -> Iterable[tuple[Path, str]]:
    for path in paths:
        if path.is_file():
            try:
                yield path, path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue


def readme_commands(readme: str, section: str) -> list[str]:
    """The shell lines of the first bash block under a README heading (## or ###), comments
    stripped."""
    match = re.search(rf"^###? {re.escape(section)}\n.*?```bash\n(.*?)```", readme, re.S | re.M)
    assert match, f"no bash block under '## {section}'"
    lines = [re.sub(r"\s+#\s.*$", "", line).strip() for line in match.group(1).splitlines()]
    return [line for line in lines if line]


def tree_digest(folder: Path) -> dict[str, str]:
    """Every file under `folder` with the MD5 of its bytes."""
    return {
        path.relative_to(folder).as_posix(): hashlib.md5(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def with_params(text: str, values: dict[str, object]) -> str:
    """params.yaml's text with each key's line set to its value: a section's own key (two spaces
    in), which must be written exactly once in the file."""
    for key, value in values.items():
        line = f"  {key}: {value}".replace("\\", "\\\\")  # a replacement, not a pattern
        text, count = re.subn(rf"(?m)^  {re.escape(key)}: .*$", line, text)
        assert count == 1, f"params.yaml has {count} lines for {key}"
    return text


def set_epochs(project: Baked, epochs: int) -> None:
    """Shorter training for tests about mechanics, not accuracy."""
    changed = with_params(project.text("params.yaml"), {"epochs": epochs})
    (project.path / "params.yaml").write_text(changed, encoding="utf-8")


@contextmanager
def background(
    command: list[str], cwd: Path, env: Mapping[str, str], health_url: str
) -> Iterator[subprocess.Popen[bytes]]:
    """A long-running README command, started in its own process group, stopped by its PID."""
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(health_url, timeout=2):
                    break
            except OSError:
                assert process.poll() is None, f"{command} exited"
                assert time.monotonic() < deadline, f"{health_url} did not answer"
                time.sleep(0.5)
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
