"""Harvest: inputs `serve` kept, chosen for labelling in Label Studio, whose labelled export in
data/feedback/ `prepare` adds to the training split.

`harvest` reads the kept inputs of the last monitor.keep_inputs_days (those an export in
data/feedback/ holds an annotation of are left out; an input sent twice is one task, with its
latest answer), chooses `harvest.count` of
them by params.yaml's `harvest.strategy` (`uncertain`: the lowest scores the model gave, where its
answers carry one; `random`: a seeded sample) and writes harvest/tasks.json (Label Studio's import
format, the served answer as a pre-annotation), harvest/interface.xml (the labelling interface)
and, for audio, harvest/files/ (what Label Studio plays; earlier clips stay, for the tasks
Label Studio holds). The folder is replaced as a whole: a failed harvest leaves the previous one.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..core.errors import FlywheelError
from ..core.paths import FEEDBACK_DIR, HARVEST_DIR, MONITOR_DIR, PREPARED_DIR
from ..data import labelling
from ..tasks import task

TASKS = "tasks.json"
INTERFACE = "interface.xml"
FILES = "files"
# Where Label Studio serves harvest/files/ from: its local-files URL, with the project folder as
# LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT (README: Label what the model served).
FILES_URL = f"/data/local-files/?d={HARVEST_DIR.as_posix()}/{FILES}/"


def choose(lines: list[dict[str, Any]], strategy: str, count: int, seed: int) -> list[dict]:
    """`count` kept inputs: the lowest scores first (`uncertain`), or a seeded sample in the
    order they came (`random`)."""
    if strategy == "uncertain":
        if not all("score" in line["prediction"] for line in lines):
            raise FlywheelError(
                "harvest.strategy: uncertain needs answers with a score, which this task's "
                "model does not give: set harvest.strategy: random in params.yaml"
            )
        return sorted(lines, key=lambda line: line["prediction"]["score"])[:count]
    from .monitor import seeded_sample

    return seeded_sample(lines, count, seed)


def harvest(
    params: Any,
    folder: Path = MONITOR_DIR,
    out_dir: Path = HARVEST_DIR,
    feedback_dir: Path = FEEDBACK_DIR,
    data_dir: Path = PREPARED_DIR,
) -> dict[str, Any]:
    """Write the chosen kept inputs as Label Studio tasks; what was written."""
    from ..data.prepare import prepared_label_names
    from .monitor import KEEP_INPUTS_FIRST, kept_inputs

    labelling.require_labellable()
    days = params.monitor.keep_inputs_days
    labelled = labelling.labelled_ids(feedback_dir) if feedback_dir.is_dir() else set()
    unique: dict[str, dict[str, Any]] = {}
    for line in kept_inputs(folder, days):  # oldest first: an input's latest answer stays
        unique[labelling.harvest_id(line["input"])] = line
    kept = [line for key, line in unique.items() if key not in labelled]
    if not kept:
        raise FlywheelError(
            f"{folder} holds no inputs kept in the last {days:g} days that {feedback_dir} does "
            f"not label already: {KEEP_INPUTS_FIRST}"
        )
    settings = params.harvest
    chosen = choose(kept, settings.strategy, settings.count, params.seed)
    classes = prepared_label_names(data_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".harvest-", dir=out_dir.parent))
    try:
        if task.INPUT_KIND == "audio":  # clips of tasks Label Studio holds still play
            if (out_dir / FILES).is_dir():
                shutil.copytree(out_dir / FILES, staging / FILES)
            else:
                (staging / FILES).mkdir()
        tasks = [labelling.to_task(line, staging / FILES, FILES_URL) for line in chosen]
        (staging / TASKS).write_text(
            json.dumps(tasks, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        (staging / INTERFACE).write_text(labelling.interface(classes), encoding="utf-8")
        shutil.rmtree(out_dir, ignore_errors=True)
        staging.rename(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {"tasks": len(tasks), "kept": len(kept), "strategy": settings.strategy}


def summary(result: dict[str, Any], out_dir: Path = HARVEST_DIR) -> str:
    """One line of what `harvest` wrote."""
    how = "the least sure first" if result["strategy"] == "uncertain" else "a random sample"
    return (
        f"harvested {result['tasks']} of {result['kept']} kept inputs ({how}) into "
        f"{out_dir / TASKS}: import it into a Label Studio project set up with "
        f"{out_dir / INTERFACE}, then export the labels as JSON into {FEEDBACK_DIR}/"
    )
