"""Copier migration to 0.2.0: the package's modules moved into folders by concern and each task
into a folder of its own. Copier deletes a file the new template no longer has, edits and all; this
script, run after the update, puts back each moved module the user had edited, at its old path,
and says in one line per module where the template's version now lives.

Run by copier (`_migrations` in copier.yml) in the project's folder, with the template's clone
as the first argument and the version the project is updated from as the second. Only the
standard library and PyYAML (which copier installs) are used.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

# Old path -> new path, inside src/<package>/.
MOVED = {
    "errors.py": "core/errors.py",
    "paths.py": "core/paths.py",
    "project.py": "core/project.py",
    "schema.py": "core/schema.py",
    "config.py": "core/config.py",
    "checksums.py": "core/checksums.py",
    "gc_pause.py": "core/gc_pause.py",
    "runlock.py": "core/runlock.py",
    "data.py": "data/prepare.py",
    "train.py": "training/train.py",
    "evaluate.py": "training/evaluate.py",
    "tune.py": "training/tune.py",
    "checkpoints.py": "training/checkpoints.py",
    "baselines.py": "training/baselines.py",
    "device.py": "training/device.py",
    "plots.py": "training/plots.py",
    "serve.py": "serving/serve.py",
    "predict.py": "serving/predict.py",
    "batching.py": "serving/batching.py",
    "inputs.py": "serving/inputs.py",
    "bench.py": "serving/bench.py",
    "loadgen.py": "serving/loadgen.py",
    "export.py": "serving/export.py",
    "registry.py": "lifecycle/registry.py",
    "gate.py": "lifecycle/gate.py",
    "monitor.py": "lifecycle/monitor.py",
    "card.py": "lifecycle/card.py",
    "reproduce.py": "lifecycle/reproduce.py",
    "tracking.py": "tracking/runs.py",
    "offline.py": "tracking/offline.py",
    "pipeline.py": "tracking/pipeline.py",
    "environment.py": "tracking/environment.py",
    "classification.py": "tasks/classification.py",
    "audio.py": "tasks/audio.py",
    "toy_speech.py": "tasks/toy_speech.py",
    "text_features.py": "tasks/text_features.py",
    "synthesis.py": "tasks/text_to_speech/synthesis.py",
    "openai_api.py": "tasks/text_generation/openai_api.py",
    "vllm_server.py": "tasks/text_generation/vllm_server.py",
    **{
        f"tasks/{task}.py": f"tasks/{task}/task.py"
        for task in (
            "text_classification",
            "text_generation",
            "audio_classification",
            "speech_recognition",
            "text_to_speech",
            "image_classification",
        )
    },
}
TEMPLATE_PACKAGE = "{{cookiecutter.project_slug}}/src/{{cookiecutter.package_name}}"


def git(*args: str, cwd: Path | str = ".") -> str | None:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    return result.stdout if result.returncode == 0 else None


def rendered(text: str, answers: dict[str, str]) -> str:
    """The few answers a moved module's Jinja names, filled in as the bake did."""
    values = {**answers, "__modality": answers.get("modality", "")}
    return re.sub(
        r"\{\{ ?cookiecutter\.(\w+) ?\}\}", lambda match: str(values[match.group(1)]), text
    )


def main(template: str, version_from: str) -> int:
    before = git("show", "HEAD:.copier-answers.yml")
    if before is None:
        return 0  # no commit to compare with: copier refuses to update a dirty project anyway
    answers = yaml.safe_load(before)
    package = Path("src") / answers["package_name"]
    for old, new in MOVED.items():
        yours = git("show", f"HEAD:{package / old}")
        if yours is None or (package / old).exists():
            continue
        shipped = git("show", f"{version_from}:{TEMPLATE_PACKAGE}/{old}", cwd=template)
        if shipped is not None and rendered(shipped, answers) == yours:
            continue  # not edited: the template's new file replaces it
        (package / old).write_text(yours, encoding="utf-8")
        print(
            f"{package / old}: your edited module is kept here; the template moved it to "
            f"{package / new}: carry your edits over, then delete this file"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
