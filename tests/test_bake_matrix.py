"""Bake the option matrix with both engines: identical output, exact file sets, static checks."""

from __future__ import annotations

import json
import py_compile
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml
from helpers import (
    FACTS,
    TASKS,
    TASKS_DIR,
    TEMPLATE_DIR_NAME,
    TEMPLATE_ROOT,
    Baked,
    git,
    text_files,
)

sys.path.insert(0, str(TEMPLATE_ROOT / "scripts"))  # import_depth
# Jinja left unrendered; GitHub Actions' `${{ }}` and Argo Rollouts' `{{args.NAME}}` are meant.
LEFTOVER = re.compile(r"(?<!\$)\{\{(?!args\.)|\{%|cookiecutter", re.IGNORECASE)


def task_files(task: str) -> list[str]:
    """A task's modules in its projects: its folder's, and the shared helpers facts.yaml names."""
    folder = TASKS_DIR / task.replace("-", "_")
    own = [f"tasks/{folder.name}/{path.name}" for path in folder.glob("*.py")]
    return sorted(own + [f"tasks/{helper}" for helper in FACTS[task]["helpers"]])


TASK_FILES = {task: task_files(task) for task in TASKS}
SHARED_MODULES = [
    "__init__.py",
    "__main__.py",
    "cli.py",
    "core/__init__.py",
    "core/checksums.py",
    "core/config.py",
    "core/errors.py",
    "core/gc_pause.py",
    "core/paths.py",
    "core/project.py",
    "core/runlock.py",
    "core/schema.py",
    "data/__init__.py",
    "data/labelling.py",
    "data/prepare.py",
    "lifecycle/__init__.py",
    "lifecycle/card.py",
    "lifecycle/gate.py",
    "lifecycle/harvest.py",
    "lifecycle/monitor.py",
    "lifecycle/registry.py",
    "lifecycle/reproduce.py",
    "lifecycle/shadow.py",
    "serving/__init__.py",
    "serving/batching.py",
    "serving/bench.py",
    "serving/export.py",
    "serving/inputs.py",
    "serving/loadgen.py",
    "serving/predict.py",
    "serving/serve.py",
    "tasks/__init__.py",
    "tasks/contract.py",
    "tracking/__init__.py",
    "tracking/environment.py",
    "tracking/offline.py",
    "tracking/pipeline.py",
    "tracking/runs.py",
    "training/__init__.py",
    "training/baselines.py",
    "training/checkpoints.py",
    "training/device.py",
    "training/evaluate.py",
    "training/plots.py",
    "training/train.py",
    "training/tune.py",
]


def expected_files(combination: dict[str, str], package: str = "flywheel_demo") -> set[str]:
    files = {
        ".copier-answers.yml",
        ".devcontainer/devcontainer.json",
        ".dvc/.gitignore",
        ".dvc/config",
        ".dvcignore",
        ".gitignore",
        ".pre-commit-config.yaml",
        "LICENSE",
        "Makefile",
        "README.md",
        "data/feedback/README.md",
        "dvc.yaml",
        "params.yaml",
        "pyproject.toml",
        "docs/decisions.md",
        "tests/conftest.py",
        "tests/answers.py",
        "tests/test_card.py",
        "tests/test_cli.py",
        "tests/test_config.py",
        "tests/test_data.py",
        "tests/test_fuzz.py",
        "tests/test_fuzz_files.py",
        "tests/media_files.py",
        "tests/test_gate.py",
        "tests/test_harvest.py",
        "tests/test_monitor.py",
        "tests/test_outage.py",
        "tests/test_registry.py",
        "tests/test_resume.py",
        "tests/test_serve.py",
        "tests/test_shadow.py",
        "tests/test_startup.py",
        "tests/test_task_contract.py",
        "tests/test_train.py",
        "tests/test_tune.py",
        "tests/traffic.py",
    }
    modules = SHARED_MODULES + TASK_FILES[combination["task"]]
    files |= {f"src/{package}/{module}" for module in modules}
    # Each task's own tests sit beside the shared ones, as its module sits beside the shared code.
    files.add(f"tests/test_{combination['task'].replace('-', '_')}.py")
    if "tasks/audio.py" in modules:
        files.add("tests/test_audio.py")
    # Speech synthesis and generation have no ONNX graph: their own tests check what `export`
    # does instead.
    if combination["task"] not in {"text-to-speech", "text-generation"}:
        files.add("tests/test_export.py")
    if combination["use_docker"] == "yes":
        files |= {"Dockerfile", ".dockerignore", "compose.yaml", "compose.team.yaml"}
        files |= {
            "deploy/k8s/train-job.yaml",
            "deploy/k8s/train-nodes.yaml",
            "deploy/k8s/serve.yaml",
            "deploy/k8s/serve-canary.yaml",
            "deploy/kfp/pipeline.py",
        }
        if combination["task"] == "text-generation":  # vLLM on a GPU node
            files.add("deploy/k8s/serve-vllm.yaml")
    if combination["ci"] == "github":
        files |= {
            ".github/dependabot.yml",
            ".github/workflows/ci.yml",
            ".github/workflows/template-drift.yml",
            ".github/workflows/continuous-training.yml",
        }
    if combination["ci"] == "github" and combination["use_docker"] == "yes":
        files |= {".github/workflows/docker.yml"}
    if combination["cloud"] != "none":
        terraform = (
            "README.md",
            "main.tf",
            "outputs.tf",
            "terraform.tfvars.example",
            "variables.tf",
            "versions.tf",
        )
        files |= {f"infra/terraform/{name}" for name in terraform}
        files |= {"deploy/skypilot/train.yaml"}
    return files


def test_engines_produce_identical_projects(pair: tuple[Baked, Baked]) -> None:
    by_cookiecutter, by_copier = pair
    cookie_tree, copier_tree = by_cookiecutter.tree(), by_copier.tree()
    assert sorted(cookie_tree) == sorted(copier_tree)
    different = [path for path in cookie_tree if cookie_tree[path] != copier_tree[path]]
    assert different == []


def test_exact_file_set(pair: tuple[Baked, Baked], combination: dict[str, str]) -> None:
    assert pair[0].files() == expected_files(combination)


def test_no_template_syntax_left(pair: tuple[Baked, Baked]) -> None:
    project = pair[0].path
    paths = list(project.rglob("*"))
    leftovers = [str(p.relative_to(project)) for p in paths if LEFTOVER.search(p.name)]
    leftovers += [
        f"{path.relative_to(project)}:{text[: match.start()].count(chr(10)) + 1}"
        for path, text in text_files(paths)
        for match in [LEFTOVER.search(text)]
        if match
    ]
    assert leftovers == []


def test_python_files_compile(pair: tuple[Baked, Baked], tmp_path: Path) -> None:
    for path in pair[0].path.rglob("*.py"):
        py_compile.compile(str(path), cfile=str(tmp_path / "out.pyc"), doraise=True)


def test_data_files_parse(pair: tuple[Baked, Baked]) -> None:
    project = pair[0].path
    parsed = 0
    for path in project.rglob("*"):
        if path.suffix in {".yml", ".yaml"}:  # Kubernetes manifests hold several documents
            list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        elif path.suffix == ".toml":
            tomllib.loads(path.read_text(encoding="utf-8"))
        elif path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
        else:
            continue
        parsed += 1
    assert parsed >= 3  # answers, pre-commit config, pyproject at least


def test_ruff_clean(pair: tuple[Baked, Baked]) -> None:
    project = pair[0]
    for command in (["check", "--no-cache", "."], ["format", "--no-cache", "--check", "."]):
        result = project.run(sys.executable, "-m", "ruff", *command)
        assert result.returncode == 0, result.stdout + result.stderr


# How many imports deep a project's own modules may load one another at start (scripts/
# import_depth.py prints the chain): deeper, and a change's reach and every command's start grow.
MAX_IMPORT_DEPTH = 7


def test_own_imports_are_shallow(pair: tuple[Baked, Baked]) -> None:
    from import_depth import longest_chain, module_imports

    [package] = [p for p in (pair[0].path / "src").iterdir() if (p / "__init__.py").is_file()]
    chain = longest_chain(module_imports(package))
    assert len(chain) - 1 <= MAX_IMPORT_DEPTH, " -> ".join(chain)


def test_answers_file_records_every_answer(
    pair: tuple[Baked, Baked], combination: dict[str, str]
) -> None:
    answers = yaml.safe_load(pair[0].text(".copier-answers.yml"))
    assert {k: answers[k] for k in combination} == combination
    assert answers["_commit"]
    assert Path(answers["_src_path"]).is_absolute()


def test_no_template_file_is_ignored_by_git() -> None:
    """A broad .gitignore pattern must never drop a template file (it happened to the seed).

    Checks every template file on disk and every tracked one against all ignore rules, the
    generated project's own .gitignore included (git applies it to the template folder too).
    """
    folder = TEMPLATE_DIR_NAME
    on_disk = {
        p.relative_to(TEMPLATE_ROOT).as_posix()
        for p in (TEMPLATE_ROOT / folder).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    tracked = set(git("ls-files", "-z", folder, cwd=TEMPLATE_ROOT).split("\0")) - {""}
    assert tracked, "the template folder has no tracked files"
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", "--stdin", "-z"],
        cwd=TEMPLATE_ROOT,
        input="\0".join(sorted(on_disk | tracked)),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    assert [name for name in result.stdout.split("\0") if name] == []


def test_pre_commit_config_is_valid(pair: tuple[Baked, Baked]) -> None:
    result = pair[0].run(sys.executable, "-m", "pre_commit", "validate-config")
    assert result.returncode == 0, result.stdout + result.stderr
