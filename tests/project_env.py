"""One environment with every generated project's dependencies, installed once and reused.

Heavy packages (torch, transformers, mlflow, dvc) take minutes to install, so the bake tests install
the union of the baked projects' dependencies once into `.cache/project-env` and run every generated
project's commands with it first on PATH. The environment is rebuilt only when that union changes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
import venv
from collections.abc import Iterable
from pathlib import Path

from filelock import FileLock
from helpers import TEMPLATE_ROOT, uv_install

ENV_DIR = TEMPLATE_ROOT / ".cache" / "project-env"
# The CPU build on this machine's local wheel store (or TORCH_INDEX_URL); an unpinned torch would
# pull CUDA wheels.
TORCH_PIN = "torch==2.13.0"


def project_requirements(projects: Iterable[Path]) -> list[str]:
    requirements: set[str] = set()
    for project in projects:
        meta = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))["project"]
        requirements.update(meta.get("dependencies", []))
        for extra in meta.get("optional-dependencies", {}).values():
            requirements.update(extra)
    return sorted(requirements)


def ensure_project_env(requirements: list[str]) -> Path:
    """The `bin` folder of an environment holding exactly these requirements."""
    ENV_DIR.parent.mkdir(parents=True, exist_ok=True)
    marker = ENV_DIR / "requirements.txt"
    # Where torch comes from, as the generated Makefile and CI read it: on a GitHub runner the CPU
    # index keeps the multi-GB CUDA build off a CPU-only test machine.
    torch_index = os.environ.get("TORCH_INDEX_URL", "")
    source = f"# torch from {torch_index}\n" if torch_index else ""
    wanted = "\n".join(requirements) + "\n" + source
    with FileLock(str(ENV_DIR) + ".lock"):
        if marker.is_file() and marker.read_text(encoding="utf-8") == wanted:
            return ENV_DIR / "bin"
        shutil.rmtree(ENV_DIR, ignore_errors=True)
        venv.create(ENV_DIR, with_pip=True)
        python = str(ENV_DIR / "bin" / "python")
        # torch through pip, which reads this machine's pip configuration (its local CPU wheel);
        # the rest through uv, which keeps that torch and takes seconds where pip takes a
        # minute and a half.
        if any(req.split(">")[0].split("=")[0].strip() == "torch" for req in requirements):
            index = ["--index-url", torch_index] if torch_index else []
            subprocess.run(
                [python, "-m", "pip", "install", "--quiet", *index, TORCH_PIN], check=True
            )
        uv_install(Path(python), requirements)
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
        "PYTHONDONTWRITEBYTECODE": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        # Two test workers share two cores: one thread each. With a thread per core in each
        # process, OpenMP's spinning threads slowed two concurrent convolutional trainings
        # from about 35 s to many minutes.
        "OMP_NUM_THREADS": "1",
    }
