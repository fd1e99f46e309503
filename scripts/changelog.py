"""The template's version and release notes, read from CHANGELOG.md (their only home).

    python3 scripts/changelog.py version        # the newest release: 0.1.0
    python3 scripts/changelog.py notes 0.1.0    # that release's section, for the GitHub release

Standard library only: the release workflow runs it on a bare runner.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

CHANGELOG = Path(__file__).resolve().parents[1] / "CHANGELOG.md"
# Keep a Changelog's release heading: "## [1.2.3] - 2026-12-05".
RELEASE = re.compile(r"^## \[(\d+\.\d+\.\d+)\] - (\d{4}-\d{2}-\d{2})$", re.M)


def releases(text: str) -> list[tuple[str, str, str]]:
    """(version, date, notes) of each release, newest first, as the file lists them."""
    found = []
    headings = list(RELEASE.finditer(text))
    for heading, following in zip(headings, [*headings[1:], None], strict=True):
        end = following.start() if following else len(text)
        found.append((heading[1], heading[2], text[heading.end() : end].strip()))
    return found


def version(text: str) -> str:
    found = releases(text)
    if not found:
        raise SystemExit(f"{CHANGELOG.name}: no release heading like '## [0.1.0] - 2026-12-05'")
    return found[0][0]


def main(argv: list[str]) -> None:
    text = CHANGELOG.read_text(encoding="utf-8")
    if argv == ["version"]:
        print(version(text))
    elif len(argv) == 2 and argv[0] == "notes":
        notes = {number: body for number, _, body in releases(text)}
        if argv[1] not in notes:
            raise SystemExit(f"{CHANGELOG.name}: no release {argv[1]} (releases: {list(notes)})")
        print(notes[argv[1]])
    else:
        raise SystemExit("usage: changelog.py version | changelog.py notes X.Y.Z")


if __name__ == "__main__":
    main(sys.argv[1:])
