"""Label Studio, the labelling tool, on both sides of the loop: the tasks `harvest` writes for
it to import (each kept input with the served model's answer as a pre-annotation) and its labelled
JSON exports, read back by `prepare` as training rows.

Plain JSON, no SDK: label-studio-sdk pulls 75 packages (opencv, pandas, nltk) into the project.
Label Studio keeps a task's `data` as imported and drops anything else of ours, so each task's key
(`harvest_id`) lives there. A task's input travels with it: text as text, a file as a `data:` URI
(Label Studio shows images from one; audio it plays from a file it serves, so an audio task also
names the copy `harvest` wrote, which Label Studio's local-files storage serves).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from ..core.errors import FlywheelError
from ..serving.predict import from_model_input
from ..tasks import task

# The interface's names: the labelled control and the object it labels.
LABEL = "label"
INPUT = "input"
# Where the bytes of an audio input travel (Label Studio plays `input`, a served file).
FILE = "file"
# What Label Studio's export format is called in its Export dialog.
EXPORT_FORMAT = "JSON"


def require_labellable() -> None:
    if task.TARGET == "speech":
        raise FlywheelError(
            "harvest: text to speech learns from recordings of a voice, which Label Studio does "
            "not make: record the texts and add them to data.source instead"
        )


def interface(classes: list[str]) -> str:
    """The labelling interface (Label Studio's XML config) for this task: a choice among the
    classes, or a text to correct (a transcript, a response)."""
    require_labellable()
    shown = {"text": "Text", "image": "Image", "audio": "Audio"}[task.INPUT_KIND]
    lines = ["<View>", f'  <{shown} name="{INPUT}" value="${INPUT}"/>']
    if task.TARGET == "class":
        lines.append(f'  <Choices name="{LABEL}" toName="{INPUT}" choice="single" required="true">')
        lines += [f"    <Choice value={quoteattr(name)}/>" for name in classes]
        lines.append("  </Choices>")
    else:
        lines.append(
            f'  <TextArea name="{LABEL}" toName="{INPUT}" editable="true" maxSubmissions="1" '
            'required="true" rows="3"/>'
        )
    return "\n".join([*lines, "</View>"]) + "\n"


def harvest_id(model_input: str) -> str:
    """A kept input's key: the same input sent twice is one task."""
    return hashlib.sha256(model_input.encode("utf-8")).hexdigest()[:16]


def media_type(raw: bytes) -> str:
    """The media type of a kept file, from its first bytes."""
    signatures = {
        b"\x89PNG": "image/png",
        b"\xff\xd8\xff": "image/jpeg",
        b"GIF8": "image/gif",
        b"RIFF": "image/webp" if raw[8:12] == b"WEBP" else "audio/wav",
        b"fLaC": "audio/flac",
        b"OggS": "audio/ogg",
    }
    found = (kind for start, kind in signatures.items() if raw.startswith(start))
    return next(found, "application/octet-stream")


# Image types a browser shows from a `data:` URI; others (BMP, TIFF) are sent as PNG.
SHOWN_IMAGES = ("image/png", "image/jpeg", "image/gif", "image/webp")


def _as_png(raw: bytes) -> bytes:
    import io

    buffer = io.BytesIO()
    task.decode_input(raw).save(buffer, format="PNG")
    return buffer.getvalue()


def to_task(kept: dict[str, Any], files_dir: Path, files_url: str) -> dict[str, Any]:
    """A kept input (a line of monitoring/inputs.jsonl) as a Label Studio task; an audio file is
    written to `files_dir`, which Label Studio serves under `files_url`."""
    key = harvest_id(kept["input"])
    data: dict[str, Any] = {"harvest_id": key}
    raw = from_model_input(kept["input"])
    if isinstance(raw, str):
        data[INPUT] = raw
    else:
        kind = media_type(raw)
        if task.INPUT_KIND == "image" and kind not in SHOWN_IMAGES:
            raw, kind = _as_png(raw), "image/png"
        data_uri = f"data:{kind};base64,{base64.b64encode(raw).decode('ascii')}"
        if task.INPUT_KIND == "audio":
            name = f"{key}.{kind.rsplit('/', 1)[1]}"
            (files_dir / name).write_bytes(raw)
            data |= {INPUT: f"{files_url}{name}", FILE: data_uri}
        else:
            data[INPUT] = data_uri
    prediction = kept["prediction"]
    if task.TARGET == "class":
        result = {"type": "choices", "value": {"choices": [prediction["label"]]}}
    else:
        result = {"type": "textarea", "value": {"text": [prediction["text"]]}}
    answer = {"id": key, "from_name": LABEL, "to_name": INPUT, **result}
    pre_annotation: dict[str, Any] = {"model_version": "served", "result": [answer]}
    if "score" in prediction:
        pre_annotation["score"] = prediction["score"]
    return {"data": data, "predictions": [pre_annotation]}


def labelled_ids(folder: Path) -> set[str]:
    """The harvest ids of the tasks the exports in `folder` hold an annotation of (labelled or
    skipped); a task exported unlabelled may be harvested again."""
    return {
        str(entry["data"].get("harvest_id"))
        for path in sorted(folder.glob("*.json"))
        for entry in _export(path)
        if entry["annotations"]
    }


def _export(path: Path) -> list[dict[str, Any]]:
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise FlywheelError(
            f"{path}: not JSON ({error}): export the project from Label Studio as {EXPORT_FORMAT}"
        ) from None
    # JSON_MIN and the CSV-like formats are lists of dicts too, without `data` and `annotations`.
    if not isinstance(entries, list) or not all(
        isinstance(entry, dict)
        and isinstance(entry.get("data"), dict)
        and isinstance(entry.get("annotations"), list)
        for entry in entries
    ):
        raise FlywheelError(
            f"{path}: not a Label Studio export (a JSON list of tasks, each with data and "
            f"annotations): export the project from Label Studio as {EXPORT_FORMAT}, not JSON_MIN"
        )
    return entries


def _annotation(entry: dict[str, Any]) -> dict[str, Any] | None:
    """The annotation a task's export counts: none of those skipped ("cancelled", which may
    still carry the pre-annotation); of the others, the ground truth, else the latest."""
    kept = [
        annotation
        for annotation in entry["annotations"]
        if isinstance(annotation, dict) and not annotation.get("was_cancelled")
    ]
    ranked = sorted(
        kept,
        key=lambda annotation: (
            bool(annotation.get("ground_truth")),
            str(annotation.get("updated_at") or annotation.get("created_at") or ""),
        ),
    )
    return ranked[-1] if ranked else None


def _label(annotation: dict[str, Any], classes: list[str], where: str) -> str | None:
    result = annotation.get("result")
    for item in result if isinstance(result, list) else []:
        if not isinstance(item, dict) or item.get("from_name") != LABEL:
            continue
        value = item.get("value")
        if not isinstance(value, dict):
            return None
        if task.TARGET == "class":
            chosen = value.get("choices")
            if not isinstance(chosen, list) or not chosen:
                return None
            if chosen[0] not in classes:
                raise FlywheelError(
                    f"{where}: labelled {chosen[0]!r}, not a class of the training data "
                    f"({', '.join(classes)}): relabel it, or add examples of that class to "
                    "data.source"
                )
            return str(chosen[0])
        parts = value.get("text")
        text = "\n".join(str(part) for part in (parts if isinstance(parts, list) else [])).strip()
        return text or None
    return None


def _raw_input(data: dict[str, Any], where: str) -> Any:
    """The input a task carries: its text, or its file's bytes from a `data:` URI."""
    if task.INPUT_KIND == "text":
        value = data.get(INPUT)
        if not isinstance(value, str) or not value.strip():
            raise FlywheelError(f"{where}: data.{INPUT} holds no text: export tasks `harvest` made")
        return value
    uri = data.get(FILE, data.get(INPUT))
    header, _, payload = str(uri).partition(",")
    if not header.startswith("data:") or not header.endswith(";base64"):
        raise FlywheelError(
            f"{where}: data.{FILE if FILE in data else INPUT} holds no base64 data: URI: export "
            "tasks `harvest` made"
        )
    try:
        return base64.b64decode(payload, validate=True)
    except binascii.Error:
        raise FlywheelError(f"{where}: its data: URI is not valid base64") from None


def feedback(folder: Path, classes: list[str]) -> tuple[list[Any], list[str], dict[str, Any]]:
    """The labelled inputs of the Label Studio exports in `folder` (*.json), decoded as the
    training split holds inputs, with their labels; and what was read (files, rows, tasks left
    out: skipped or unlabelled). A task labelled in several exports counts once, as the last
    file (by name) has it."""
    files = sorted(folder.glob("*.json"))
    if not files:
        return [], [], {"files": [], "rows": 0, "left_out": 0, "held_out": 0}
    require_labellable()
    rows: dict[str, tuple[Any, str]] = {}
    left_out = 0
    for path in files:
        for number, entry in enumerate(_export(path), start=1):
            where = f"{path} task {entry.get('id', number)}"
            data = entry["data"]
            annotation = _annotation(entry)
            label = None if annotation is None else _label(annotation, classes, where)
            if label is None:
                left_out += 1
                continue
            raw = _raw_input(data, where)
            value = raw if task.INPUT_KIND == "text" else task.decode_input(raw, name=where)
            key = str(data.get("harvest_id") or harvest_id(json.dumps(data, sort_keys=True)))
            rows[key] = (value, label)
    summary = {
        "files": [path.name for path in files],
        "rows": len(rows),
        "left_out": left_out,
        "held_out": 0,
    }
    return [value for value, _ in rows.values()], [label for _, label in rows.values()], summary
