"""The DVC side of lineage: data versions as DVC names them, and the stages `dvc.lock` records.

A run's data hash is the hash DVC gives the prepared-data folder (`<md5>.dir`), so the same string
finds the data in `dvc.lock`, in the DVC cache and on the remote.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from ..core.checksums import file_md5
from ..core.paths import PREPARED_DIR

LOCK_FILE = Path("dvc.lock")
# The stage whose output is the prepared data, as named in dvc.yaml.
PREPARE_STAGE = "prepare"


def directory_md5(folder: Path) -> str:
    """DVC's hash of a folder: the MD5 of its sorted file listing, with a `.dir` suffix."""
    entries = [
        {"md5": file_md5(path), "relpath": path.relative_to(folder).as_posix()}
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    ]
    entries.sort(key=lambda entry: entry["relpath"])
    listing = json.dumps(entries, sort_keys=True).encode("utf-8")
    return hashlib.md5(listing, usedforsecurity=False).hexdigest() + ".dir"


def read_lock(text: str | None = None) -> dict[str, Any]:
    """The stages of dvc.lock (from `text`, else the file); empty when there is none yet."""
    if text is None:
        if not LOCK_FILE.is_file():
            return {}
        text = LOCK_FILE.read_text(encoding="utf-8")
    lock = yaml.safe_load(text) or {}
    return lock.get("stages", {}) if isinstance(lock, dict) else {}


def locked_output_md5(stages: dict[str, Any], stage: str, path: Path) -> str | None:
    for out in stages.get(stage, {}).get("outs", []):
        if out.get("path") == path.as_posix():
            return out.get("md5")
    return None


def stage_hash(entry: dict[str, Any]) -> str:
    """One hash for a stage's locked command, dependencies, params and outputs."""
    return hashlib.md5(
        json.dumps(entry, sort_keys=True).encode("utf-8"), usedforsecurity=False
    ).hexdigest()


def lineage_tags(data_md5: str) -> dict[str, str]:
    """DVC tags for a training run: the lock entry of the stage that made its data, when the lock
    describes the data the run really used (under `dvc repro` it always does)."""
    stages = read_lock()
    if locked_output_md5(stages, PREPARE_STAGE, PREPARED_DIR) != data_md5:
        return {"lineage.dvc_lock": "stale" if stages else "none"}
    return {
        "lineage.dvc_lock": "current",
        f"lineage.dvc_stage.{PREPARE_STAGE}": stage_hash(stages[PREPARE_STAGE]),
    }
