"""Cookiecutter's half of the dual-engine template, driven by copier.yml.

copier.yml is the single source of truth for answer validation, conditional files and the stored
answers. Copier reads it natively; the cookiecutter hooks call the functions here to do exactly what
copier would: render the same validators, prune the files matched by the same `_exclude` rules, and
write `.copier-answers.yml` byte for byte as copier writes it, so that a project baked with
cookiecutter is later updated with `copier update`.

Only the standard library, Jinja2 and PyYAML are used: all three come with cookiecutter itself.
"""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jinja2
import yaml

COPIER_FILE = "copier.yml"
ANSWERS_HEADER = "# Changes here will be overwritten by Copier; NEVER EDIT MANUALLY\n"
# cookiecutter cannot skip a question, so it asks `task` only and derives the modality from it.
COOKIECUTTER_RENAMES = {"modality": "__modality"}


class HookError(Exception):
    """A problem the user can fix, reported as one line."""


def load_config(template_root: Path) -> dict[str, Any]:
    return yaml.safe_load((template_root / COPIER_FILE).read_text(encoding="utf-8"))


def questions(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Copier's questions in declaration order (settings start with an underscore)."""
    return {name: spec for name, spec in config.items() if not name.startswith("_")}


def is_computed(spec: dict[str, Any]) -> bool:
    return spec.get("when") is False


def render(source: str, context: dict[str, Any]) -> str:
    env = jinja2.Environment(
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
    )
    return env.from_string(source).render(context)


def copier_context(cookiecutter: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """The render context copier would hold for the same answers."""
    context: dict[str, Any] = {}
    for name, spec in questions(config).items():
        if name == "cookiecutter":
            context[name] = cookiecutter
        elif is_computed(spec):
            context[name] = yaml.safe_load(render(str(spec.get("default", "")), context))
        else:
            context[name] = cookiecutter[COOKIECUTTER_RENAMES.get(name, name)]
    return context


def validation_errors(context: dict[str, Any], config: dict[str, Any]) -> list[str]:
    errors = []
    for spec in questions(config).values():
        if "validator" in spec and not is_computed(spec):
            message = render(spec["validator"], context).strip()
            if message:
                errors.append(message)
    return errors


def exclude_patterns(context: dict[str, Any], config: dict[str, Any]) -> list[str]:
    patterns = []
    for rule in config.get("_exclude", []):
        for line in render(rule, context).splitlines():
            if line.strip():
                patterns.append(line.strip())
    return patterns


def matches(relpath: str, pattern: str) -> bool:
    """Gitignore matching for the subset of patterns this template uses.

    Supported: root-anchored paths (`/infra`, `/src/*/tasks/x.py`), which match that path and all
    below it, and bare names matched against any path component (`__pycache__`, `*.py[co]`).
    Anything else is refused, so a rule cookiecutter cannot honour fails loudly instead of leaking
    a file.
    """
    if "**" in pattern or pattern.startswith("!") or "\\" in pattern:
        raise HookError(f"_exclude rule {pattern!r} is outside the subset the hook understands")
    parts = relpath.split("/")
    pattern = pattern.rstrip("/")
    if not pattern.startswith("/"):
        if "/" in pattern:
            raise HookError(f"_exclude rule {pattern!r} must be root-anchored (start with '/')")
        return any(fnmatch.fnmatchcase(part, pattern) for part in parts)
    pattern_parts = pattern.lstrip("/").split("/")
    if len(parts) < len(pattern_parts):
        return False
    return all(fnmatch.fnmatchcase(p, q) for p, q in zip(parts, pattern_parts, strict=False))


def prune(project_dir: Path, patterns: list[str]) -> list[str]:
    """Delete every file or folder of the baked project that an exclude pattern matches."""
    removed = []
    for path in sorted(project_dir.rglob("*"), key=lambda p: len(p.parts)):
        if not path.exists() and not path.is_symlink():
            continue  # inside a folder removed earlier
        relpath = path.relative_to(project_dir).as_posix()
        if any(matches(relpath, pattern) for pattern in patterns):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(relpath)
    return removed


def template_commit(template_root: Path) -> str | None:
    """What copier records as `_commit`: `git describe --tags --always` of the template."""
    try:
        result = subprocess.run(
            ["git", "describe", "--tags", "--always"],
            cwd=template_root,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return result.stdout.strip() or None


def answers_text(
    context: dict[str, Any], config: dict[str, Any], src_path: str, commit: str | None
) -> str:
    """`.copier-answers.yml` exactly as copier renders it with `to_nice_yaml`."""
    answers: dict[str, Any] = {}
    if commit:
        answers["_commit"] = commit
    answers["_src_path"] = src_path
    for name, spec in questions(config).items():
        if not is_computed(spec):
            answers[name] = context[name]
    body = yaml.dump(answers, indent=4, allow_unicode=True, default_flow_style=False)
    return ANSWERS_HEADER + body


def src_path_for(template_as_typed: str, template_root: Path) -> str:
    """Copier records a local template by absolute path and a remote one as typed."""
    if Path(template_as_typed).expanduser().is_dir():
        return str(template_root)
    return template_as_typed
