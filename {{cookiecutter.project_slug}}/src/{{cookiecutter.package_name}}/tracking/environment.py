"""The installed packages as a run records them, and how another environment differs.

`uv.lock` says what `make setup` installs; what a run actually ran with is the environment
itself (a package installed by hand, a lock not synced yet). Each run records that list as its
`environment.txt` artifact and its hash as the tag `lineage.environment_hash`; `reproduce`
compares it with the packages installed now.
"""

from __future__ import annotations

import functools
import hashlib
import re
import sys
from pathlib import Path

ARTIFACT = "environment.txt"
HASH_TAG = "lineage.environment_hash"
# How many differences one line names before it counts the rest.
SHOWN = 3


def canonical(name: str) -> str:
    """A distribution name as PyPI compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@functools.cache
def installed(project: str) -> dict[str, str]:
    """Every installed distribution's version by name, as the running interpreter sees them;
    the project itself left out (its version is its commit's business).

    Read from the `<name>-<version>.dist-info` folder names on sys.path, which installers write
    normalised (the wheel spec): a fifth of a millisecond each, where parsing every METADATA
    file through importlib.metadata costs a third of a second per process."""
    packages: dict[str, str] = {}
    for entry in sys.path:
        folder = Path(entry or ".")
        if not folder.is_dir():
            continue
        for info in sorted(folder.glob("*.dist-info")) + sorted(folder.glob("*.egg-info")):
            name, _, rest = info.stem.partition("-")
            key = canonical(name)
            # The first of two copies on sys.path is the one an import finds.
            if rest and key != canonical(project) and key not in packages:
                packages[key] = rest.split("-")[0]
    return dict(sorted(packages.items()))


def as_text(packages: dict[str, str]) -> str:
    return "".join(f"{name}=={version}\n" for name, version in packages.items())


def parse(text: str) -> dict[str, str]:
    pairs = (line.split("==", 1) for line in text.splitlines() if "==" in line)
    return {canonical(name): version for name, version in pairs}


def fingerprint(packages: dict[str, str]) -> str:
    return hashlib.sha256(as_text(packages).encode()).hexdigest()


def differences(recorded: dict[str, str], current: dict[str, str]) -> list[str]:
    """What changed from `recorded` to `current`, one phrase per package."""
    changed = [
        f"{name} {current[name]} (run: {recorded[name]})"
        for name in sorted(recorded.keys() & current.keys())
        if recorded[name] != current[name]
    ]
    added = [f"{name} {current[name]} (not in the run's)" for name in current.keys() - recorded]
    missing = [f"{name} missing (run: {recorded[name]})" for name in recorded.keys() - current]
    return changed + sorted(added) + sorted(missing)


def summary(found: list[str]) -> str:
    shown = ", ".join(found[:SHOWN])
    return shown + (f" and {len(found) - SHOWN} more" if len(found) > SHOWN else "")
