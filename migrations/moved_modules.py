"""Copier migration to 0.2.0: the package's modules moved into folders by concern and each task
into a folder of its own. Copier deletes a file the new template no longer has, edits and all; this
script, run after the update, puts back each moved module the user had edited, at its old path
with a first line saying so, and says in one line per module where the template's version now
lives.

Run by copier (`_migrations` in copier.yml) in the project's folder, with the template's clone,
the version the project is updated from and the answers file as arguments. Only the standard
library, Jinja2 and PyYAML (all three installed with copier) are used.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import jinja2
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
# The first line of a kept module: it makes the file a change the update's pull request shows, and
# the drift workflow lists every file that starts with it among the files to resolve.
KEPT = "# copier update kept this module: you edited it, and the template moved it to {new}."


def git(*args: str, cwd: Path | str = ".") -> str | None:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    return result.stdout if result.returncode == 0 else None


def rendered(text: str, answers: dict[str, Any]) -> str | None:
    """The module as the old release baked it from these answers; None where it cannot tell."""
    context = {**answers, "__modality": answers.get("modality", "")}
    environment = jinja2.Environment(keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    try:
        return environment.from_string(text).render(cookiecutter=context)
    except jinja2.TemplateError:
        return None


def main(template: str, version_from: str, answers_file: str) -> int:
    # `./` paths: the project may sit in a folder of a bigger repository.
    before = git("show", f"HEAD:./{answers_file}")
    if before is None:
        print(f"{answers_file} is not in the last commit: moved modules you edited are not kept")
        return 0
    answers = yaml.safe_load(before)
    package = Path("src") / answers["package_name"]
    readable = git("cat-file", "-e", f"{version_from}^{{commit}}", cwd=template) is not None
    if not readable:
        print(f"template {version_from} not found: every moved module is kept; delete the unedited")
    for old, new in MOVED.items():
        yours = git("show", f"HEAD:./{package / old}")
        if yours is None or (package / old).exists():
            continue
        shipped = git("show", f"{version_from}:{TEMPLATE_PACKAGE}/{old}", cwd=template)
        if shipped is not None and rendered(shipped, answers) == yours:
            continue  # not edited: the template's new file replaces it
        marker = KEPT.format(new=(package / new).as_posix())
        (package / old).write_text(f"{marker}\n{yours}", encoding="utf-8")
        print(
            f"{package / old}: your edited module is kept here; the template moved it to "
            f"{package / new}: carry your edits over, then delete this file"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
