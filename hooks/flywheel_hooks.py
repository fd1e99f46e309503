"""Cookiecutter's half of the dual-engine template, driven by copier.yml.

copier.yml is the single source of truth for answer validation, conditional files and the stored
answers. Copier reads it natively; the cookiecutter hooks call the functions here to do exactly what
copier would: render the same validators, prune the files matched by the same `_exclude` rules, and
write `.copier-answers.yml` byte for byte as copier writes it, so that a project baked with
cookiecutter is later updated with `copier update`.

The work happens inside cookiecutter's own process: `CopierRules` is a Jinja extension (named in
cookiecutter.json's `_extensions`) whose filters compute the validation errors, the files to drop
and the answers file while cookiecutter renders each hook script. The rendered hooks then hold
those results as literals and need only the standard library: a hook that imported Jinja2 and
PyYAML and read copier.yml again cost a tenth of a second per process, a third of a bake.

Only the standard library, Jinja2 and PyYAML are used: all three come with cookiecutter itself.
"""

from __future__ import annotations

import fnmatch
import functools
import subprocess
import sys
from pathlib import Path
from typing import Any

import jinja2
import jinja2.ext
import yaml

COPIER_FILE = "copier.yml"
ANSWERS_HEADER = "# Changes here will be overwritten by Copier; NEVER EDIT MANUALLY\n"
# cookiecutter cannot skip a question, so it asks `task` only and derives the modality from it.
COOKIECUTTER_RENAMES = {"modality": "__modality"}


class HookError(Exception):
    """A problem the user can fix, reported as one line."""


# libyaml's loader where PyYAML was built with it: ten times faster than the pure-Python one.
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# One environment for every expression: compiled templates are cached across the hooks (and
# across the bakes of a test session), since compiling is most of the hooks' work.
JINJA = jinja2.Environment(
    undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
)


def load_config(template_root: Path) -> dict[str, Any]:
    return yaml.load((template_root / COPIER_FILE).read_text(encoding="utf-8"), Loader=YAML_LOADER)


def questions(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Copier's questions in declaration order (settings start with an underscore)."""
    return {name: spec for name, spec in config.items() if not name.startswith("_")}


def is_computed(spec: dict[str, Any]) -> bool:
    return spec.get("when") is False


def render(source: str, context: dict[str, Any]) -> str:
    return compiled(source).render(context)


@functools.lru_cache(maxsize=512)
def compiled(source: str) -> jinja2.Template:
    return JINJA.from_string(source)


def copier_context(cookiecutter: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """The render context copier would hold for the same answers."""
    context: dict[str, Any] = {}
    for name, spec in questions(config).items():
        if name == "cookiecutter":
            context[name] = cookiecutter
        elif is_computed(spec):
            context[name] = yaml.load(render(str(spec.get("default", "")), context), YAML_LOADER)
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


def excluded_paths(project_dir: Path, patterns: list[str]) -> list[str]:
    """The baked project's files and folders that an exclude pattern matches, outermost only."""
    excluded: list[str] = []
    for path in sorted(project_dir.rglob("*"), key=lambda p: len(p.parts)):
        relpath = path.relative_to(project_dir).as_posix()
        if any(relpath.startswith(folder + "/") for folder in excluded):
            continue  # inside a folder already dropped
        if any(matches(relpath, pattern) for pattern in patterns):
            excluded.append(relpath)
    return sorted(excluded)


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
    """Copier records a local template by absolute path and a remote one (URL, `gh:` …) as typed."""
    from cookiecutter.config import BUILTIN_ABBREVIATIONS
    from cookiecutter.repository import expand_abbreviations, is_repo_url, is_zip_file

    expanded = expand_abbreviations(template_as_typed, BUILTIN_ABBREVIATIONS)
    if is_repo_url(expanded) or is_zip_file(expanded):
        return template_as_typed
    return str(template_root)


def template_root_of(cookiecutter: dict[str, Any]) -> Path:
    """The template folder cookiecutter is baking from.

    Cookiecutter keeps a local path as typed (maybe relative), but renders and runs hooks from
    inside that folder, so a relative path names the working directory.
    """
    repo_dir = Path(cookiecutter["_repo_dir"]).expanduser()
    return repo_dir if repo_dir.is_absolute() else Path.cwd()


def pre_generation(cookiecutter: dict[str, Any]) -> list[str]:
    """What the pre-generation hook reports: one line per answer a validator refuses.

    With any, the bake stops here, while cookiecutter renders the hook script: the lines are
    printed and the process exits 1, so cookiecutter's traceback of a failed hook never follows
    them. The project folder cookiecutter has just created (still empty) goes too; one that
    held files before (`--overwrite-if-exists`) stays as it was.
    """
    config = load_config(template_root_of(cookiecutter))
    errors = validation_errors(copier_context(cookiecutter, config), config)
    if errors:
        for error in errors:
            print(f"ERROR: {error}", file=sys.stderr)
        project_dir = Path(cookiecutter["_output_dir"]) / cookiecutter["project_slug"]
        if project_dir.is_dir() and not any(project_dir.iterdir()):
            project_dir.rmdir()
        raise SystemExit(1)
    return errors


def post_generation(cookiecutter: dict[str, Any]) -> dict[str, Any]:
    """What the post-generation hook does: the paths to delete, the answers file to write and
    the next steps to print (copier's `_message_after_copy`).

    Rendered after every file is generated, so the project folder can be listed already.
    """
    template_root = template_root_of(cookiecutter)
    config = load_config(template_root)
    context = copier_context(cookiecutter, config)
    # The template folder is `{{cookiecutter.project_slug}}`: the project lands there.
    project_dir = Path(cookiecutter["_output_dir"]) / cookiecutter["project_slug"]
    try:
        excluded = excluded_paths(project_dir, exclude_patterns(context, config))
    except HookError as error:
        return {"error": str(error)}
    conf = {"_copier_conf": {"dst_path": str(project_dir)}}
    return {
        "excluded": excluded,
        "message": render(config.get("_message_after_copy", ""), context | conf),
        "answers_file": config.get("_answers_file", ".copier-answers.yml"),
        "answers": answers_text(
            context,
            config,
            src_path=src_path_for(cookiecutter["_template"], template_root),
            commit=template_commit(template_root),
        ),
    }


class CopierRules(jinja2.ext.Extension):
    """The filters the hook scripts are rendered with: `pre_generation`, `post_generation`."""

    def __init__(self, environment: jinja2.Environment) -> None:
        super().__init__(environment)
        environment.filters["pre_generation"] = pre_generation
        environment.filters["post_generation"] = post_generation
