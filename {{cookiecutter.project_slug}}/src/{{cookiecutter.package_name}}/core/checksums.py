"""A trained model folder's manifest: the run that made it and each file's checksum.

Written when `train` saves the folder and checked before `serve`, `predict` or `evaluate` use it,
so a missing or altered file stops them with one line instead of a traceback or, worse, answers
from a model that is not the one trained.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from .errors import FlywheelError

MANIFEST = "manifest.json"


def file_md5(path: Path) -> str:
    """The MD5 DVC and the manifest give a file (a fingerprint, not a security measure)."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(model_dir: Path, run_id: str | None) -> None:
    files = {
        path.relative_to(model_dir).as_posix(): file_md5(path)
        for path in sorted(model_dir.rglob("*"))
        if path.is_file() and path.name != MANIFEST
    }
    manifest = {"run_id": run_id, "files": files}
    (model_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def verify(model_dir: Path) -> dict[str, Any]:
    """The checked folder's `run_id` and `checksum` (one digest of every file's). A folder saved
    without a manifest (by an earlier release, or a checkpoint from elsewhere) is not checked:
    both are None."""
    path = model_dir / MANIFEST
    if not path.is_file():
        return {"run_id": None, "checksum": None}
    fix = f"restore it (`dvc checkout {model_dir}`) or train again"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        files: dict[str, str] = manifest["files"]
    except (ValueError, KeyError, TypeError):
        raise FlywheelError(f"{path} is not a valid manifest: {fix}") from None
    for name, md5 in sorted(files.items()):
        file = model_dir / name
        if not file.is_file():
            raise FlywheelError(f"{model_dir}: {name} is missing: {fix}")
        if file_md5(file) != md5:
            raise FlywheelError(
                f"{model_dir}: {name} differs from the file `train` saved (its checksum): {fix}"
            )
    digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
    return {"run_id": manifest.get("run_id"), "checksum": digest}
