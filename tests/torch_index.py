"""Where uv finds torch for a generated project's `make setup`: for `make demo` and the tests.

A generated project locks torch from PyTorch's own indexes (download.pytorch.org), as uv's
PyTorch guide does. Where they answer, this prints nothing and nothing is overridden. Where they
do not (a closed network that reaches PyPI only, like the template's development machine), it
builds a one-package index of the torch wheel pip finds (there, the machine's local CPU wheel)
and prints its file URL, for `make setup TORCH_INDEX=<url>`. A lock made that way names this
machine's paths: it is for the demo and the tests, not for a project to commit. Standard library
only: `python3 tests/torch_index.py` runs before any environment exists.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

# The CPU build on this machine's local wheel store (or TORCH_INDEX_URL); an unpinned torch would
# pull CUDA wheels. Kept here, not in project_env.py: this file runs on the standard library alone.
TORCH_PIN = "torch==2.13.0"
# Where the wheel and its one-package index are kept: `make demo`'s and the suite's.
TORCH_WHEELS = Path(__file__).resolve().parents[1] / ".cache" / "torch-index"
PYTORCH_INDEX = "https://download.pytorch.org/whl/cpu/torch/"


def reachable(url: str = PYTORCH_INDEX) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=10):
            return True
    except (urllib.error.URLError, OSError):
        return False


def torch_wheel(folder: Path, python: str = sys.executable, index: str = "") -> Path:
    """The wheel `pip download TORCH_PIN` brings (from `index` where given), kept in `folder`
    (per pin)."""
    wheels = folder / TORCH_PIN.replace("==", "-") / "wheels"  # a new pin, a new download
    found = sorted(wheels.glob("torch-*.whl"))
    if not found:
        download = [python, "-m", "pip", "download", "--quiet", "--no-deps", TORCH_PIN]
        download += ["--index-url", index] if index else []
        subprocess.run([*download, "--dest", str(wheels)], check=True)
        found = sorted(wheels.glob("torch-*.whl"))
    [wheel] = found
    return wheel


def local_index(folder: Path, python: str = sys.executable) -> str:
    """A PEP 503 index beside that wheel, holding it; its URL."""
    wheel = torch_wheel(folder, python)
    simple = wheel.parent.parent / "simple"
    page = simple / "torch" / "index.html"
    if not page.is_file():
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(f'<a href="{wheel.as_uri()}#sha256={digest}">{wheel.name}</a>\n')
    return simple.as_uri()


def torch_index(folder: Path, python: str = sys.executable) -> str:
    """The generated Makefile's TORCH_INDEX: the local index, or "" where PyTorch's answers."""
    return "" if reachable() else local_index(folder, python)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=TORCH_WHEELS)
    args = parser.parse_args()
    print(torch_index(args.folder.resolve()))


if __name__ == "__main__":
    main()
