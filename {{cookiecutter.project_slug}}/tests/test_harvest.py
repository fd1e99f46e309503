"""Harvest: kept inputs written as Label Studio tasks, and a labelled Label Studio export read
back into the training split by `prepare`."""
{% if cookiecutter.task == "text-to-speech" %}
import pytest
from typer.testing import CliRunner

import traffic
from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.core.errors import FlywheelError
from {{ cookiecutter.package_name }}.core.paths import FEEDBACK_DIR, HARVEST_DIR, MODEL_DIR, MONITOR_DIR
from {{ cookiecutter.package_name }}.data.prepare import prepare
{%- else %}
import base64
import json
from xml.etree import ElementTree

import numpy as np
import pytest
from typer.testing import CliRunner

import traffic
from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.core.errors import FlywheelError
from {{ cookiecutter.package_name }}.core.paths import FEEDBACK_DIR, HARVEST_DIR, MODEL_DIR, MONITOR_DIR
from {{ cookiecutter.package_name }}.data.labelling import harvest_id
from {{ cookiecutter.package_name }}.data.prepare import label_names, load_prepared, prepare
from {{ cookiecutter.package_name }}.lifecycle.harvest import FILES_URL, INTERFACE, TASKS
from {{ cookiecutter.package_name }}.lifecycle.monitor import kept_inputs
from {{ cookiecutter.package_name }}.tasks import task

CLASSIFIER = task.TARGET == "class"
{%- endif %}

# Inputs kept by the server; the harvest takes fewer, to show it chooses.
KEPT = 12
HARVESTED = 4


@pytest.fixture
def project(trained, tmp_path, monkeypatch):
    """A project folder with the session's prepared data, whose server kept KEPT answered
    inputs; the inputs, as clients sent them."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "prepared").symlink_to(trained.workspace / "data" / "prepared")
    (tmp_path / "params.yaml").write_bytes((trained.workspace / "params.yaml").read_bytes())
    traffic.set_keys(tmp_path / "params.yaml", count=HARVESTED)
    monkeypatch.chdir(tmp_path)
    model = trained.workspace / MODEL_DIR
    return traffic.keep(model, trained.params.monitor, MONITOR_DIR, KEPT, new=True)
{%- if cookiecutter.task == "text-to-speech" %}


def test_text_to_speech_is_not_labelled_in_label_studio(trained, project, tmp_path) -> None:
    result = CliRunner().invoke(app, ["harvest"])
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert line.startswith("error: harvest: text to speech learns from recordings of a voice")
    assert not HARVEST_DIR.exists()
    FEEDBACK_DIR.mkdir()
    (FEEDBACK_DIR / "export.json").write_text("[]", encoding="utf-8")
    with pytest.raises(FlywheelError, match="text to speech learns from recordings"):
        prepare(trained.params, tmp_path / "prepared")
    assert not (tmp_path / "prepared").exists()
{%- else %}


def _harvest() -> list[dict]:
    result = CliRunner().invoke(app, ["harvest"])
    assert result.exit_code == 0, result.output
    [line] = result.output.strip().splitlines()
    assert line.startswith(f"harvested {HARVESTED} of "), line
    return json.loads((HARVEST_DIR / TASKS).read_text(encoding="utf-8"))


def _file(data_uri: str) -> bytes:
    header, payload = data_uri.split(",", 1)
    assert header.startswith(f"data:{task.INPUT_KIND}/") and header.endswith(";base64"), header
    return base64.b64decode(payload)


def _sent(project: list, key: str):
    """The input a client sent, by its harvest id."""
    keys = [harvest_id(line["input"]) for line in kept_inputs(MONITOR_DIR, days=1)]
    return project[keys.index(key)]


def _input(data: dict) -> object:
    """What a task shows the annotator: text, or the bytes of its file."""
    if task.INPUT_KIND == "text":
        return data["input"]
    if task.INPUT_KIND == "audio":  # Label Studio plays a file it serves; the bytes travel too
        name = data["input"].removeprefix(FILES_URL)
        assert (HARVEST_DIR / "files" / name).read_bytes() == _file(data["file"])
        return _file(data["file"])
    return _file(data["input"])


def test_harvest_writes_label_studio_tasks_with_the_served_answers(project) -> None:
    tasks = _harvest()
    kept = {harvest_id(line["input"]): line for line in kept_inputs(MONITOR_DIR, days=1)}
    assert len({entry["data"]["harvest_id"] for entry in tasks}) == len(tasks) == HARVESTED
    for entry in tasks:
        key = entry["data"]["harvest_id"]
        assert _input(entry["data"]) == _sent(project, key)
        [pre_annotation] = entry["predictions"]
        [answer] = pre_annotation["result"]
        assert (answer["from_name"], answer["to_name"]) == ("label", "input")
        prediction = kept[key]["prediction"]
        if CLASSIFIER:
            assert answer["value"] == {"choices": [prediction["label"]]}
            assert pre_annotation["score"] == prediction["score"]
        else:
            assert answer["value"] == {"text": [prediction["text"]]}
    if CLASSIFIER:  # harvest.strategy: uncertain, their default: the lowest scores first
        scores = sorted(line["prediction"]["score"] for line in kept.values())
        assert sorted(entry["predictions"][0]["score"] for entry in tasks) == scores[:HARVESTED]
    else:  # harvest.strategy: random, seeded: the same tasks again
        assert _harvest() == tasks
    view = ElementTree.fromstring((HARVEST_DIR / INTERFACE).read_text(encoding="utf-8"))
    shown, control = list(view)
    assert (shown.get("name"), shown.get("value")) == ("input", "$input")
    assert (control.get("name"), control.get("toName")) == ("label", "input")
    if CLASSIFIER:
        classes = label_names(load_prepared(names=("train",))["train"])
        assert control.tag == "Choices" and [choice.get("value") for choice in control] == classes
    else:
        assert control.tag == "TextArea"


def _labelled(pre_annotation: dict, label: str) -> list[dict]:
    """A Label Studio result: the pre-annotation with `label` chosen or written instead."""
    [answer] = pre_annotation["result"]
    value = {"choices": [label]} if CLASSIFIER else {"text": [label]}
    return [{**answer, "value": value, "origin": "prediction-changed"}]


def _annotation(result: list[dict], updated_at: str, **fields: object) -> dict:
    return {
        "result": result,
        "was_cancelled": False,
        "ground_truth": False,
        "completed_by": 1,
        "created_at": updated_at,
        "updated_at": updated_at,
        **fields,
    }


def _held_out_task(classes: list[str]) -> dict:
    """A labelled task whose input is the test split's first, as a client would send it."""
    raw = task.example_input(load_prepared(names=("test",))["test"].select([0]))
    if not isinstance(raw, str):
        raw = f"data:image/png;base64,{base64.b64encode(raw).decode('ascii')}"
    label = classes[0] if CLASSIFIER else "x"
    result = _labelled({"result": [{"from_name": "label", "to_name": "input"}]}, label)
    return {"id": 900, "data": {"input": raw}, "annotations": [_annotation(result, "2026")]}


def test_a_label_studio_export_joins_the_training_split(trained, project, tmp_path) -> None:
    tasks = _harvest()
    answers = [entry["predictions"][0] for entry in tasks]
    served = [answer["result"][0]["value"] for answer in answers]
    served = [value["choices"][0] if CLASSIFIER else value["text"][0] for value in served]
    classes = label_names(load_prepared(names=("train",))["train"])
    corrected = [
        next(name for name in classes if name != label) if CLASSIFIER else f"corrected {label}"
        for label in served
    ]
    first, second, third, fourth = answers
    # As Label Studio exports a project: its own ids, the data as imported, the annotations.
    annotations = [
        [_annotation(first["result"], "2026-01-02T10:00:00Z")],
        [  # corrected later: the latest counts
            _annotation(second["result"], "2026-01-02T10:00:00Z"),
            _annotation(_labelled(second, corrected[1]), "2026-01-03T10:00:00Z"),
        ],
        # skipped: Label Studio keeps the pre-annotation in a cancelled annotation
        [_annotation(third["result"], "2026-01-02T10:00:00Z", was_cancelled=True)],
        [  # a ground truth counts before a later annotation
            _annotation(_labelled(fourth, corrected[3]), "2026-01-02T10:00:00Z", ground_truth=True),
            _annotation(fourth["result"], "2026-01-05T10:00:00Z"),
        ],
    ]
    export = [
        {"id": 101 + number, "data": entry["data"], "annotations": annotations[number]}
        for number, entry in enumerate(tasks)
    ]
    # An exact copy of a test input, labelled: left out, the test split stays unseen. (A
    # waveform comes back from a WAV file rounded: copies of audio are not told apart.)
    copies = [] if task.INPUT_KIND == "audio" else [_held_out_task(classes)]
    FEEDBACK_DIR.mkdir()
    (FEEDBACK_DIR / "project-1-at-2026-01-05.json").write_text(json.dumps(export + copies), "utf-8")
    sizes = prepare(trained.params, tmp_path / "prepared")
    before = len(load_prepared(names=("train",))["train"])
    assert sizes["feedback"] == 3 and sizes["train"] == before + 3
    assert sizes["feedback_held_out"] == len(copies)
    lineage = json.loads((tmp_path / "prepared" / "feedback.json").read_text(encoding="utf-8"))
    assert lineage["rows"] == 3 and lineage["held_out"] == len(copies)
    train = load_prepared(tmp_path / "prepared", names=("train",))["train"]
    added = train.select(range(before, before + 3))
    labels = [classes[label] for label in added["label"]] if CLASSIFIER else added["label"]
    assert labels == [served[0], corrected[1], corrected[3]]
    sent = [_sent(project, tasks[number]["data"]["harvest_id"]) for number in (0, 1, 3)]
    for row, raw in zip(added, sent, strict=True):
        if task.INPUT_KIND == "text":
            assert row["input"] == raw
        else:
            decoded = np.asarray(task.decode_input(raw), dtype=np.float32)
            assert np.allclose(np.asarray(row["input"], dtype=np.float32), decoded, atol=1e-4)
    # A task in data/feedback, labelled or skipped, is not harvested again.
    again = CliRunner().invoke(app, ["harvest"])
    assert f"of {KEPT - HARVESTED} kept inputs" in again.output, again.output


# An export's task with a label for whatever this task learns, and no input.
LABELLED = {"choices": ["no such class"]} if CLASSIFIER else {"text": ["x"]}
NO_INPUT = [
    {"id": 7, "data": {}, "annotations": [{"result": [{"from_name": "label", "value": LABELLED}]}]}
]


@pytest.mark.parametrize(
    ("export", "says"),
    [
        ("{not json", "not JSON"),
        ('{"data": {}}', "not a Label Studio export (a JSON list of tasks, each with data"),
        ('[{"label": "x"}]', "export the project from Label Studio as JSON, not JSON_MIN"),
        (
            json.dumps(NO_INPUT),
            "task 7: labelled 'no such class', not a class" if CLASSIFIER else "task 7: data.",
        ),
    ],
)
def test_a_bad_export_is_one_line_and_prepares_nothing(trained, project, tmp_path, export, says):
    FEEDBACK_DIR.mkdir()
    (FEEDBACK_DIR / "export.json").write_text(export, encoding="utf-8")
    with pytest.raises(FlywheelError) as raised:
        prepare(trained.params, tmp_path / "prepared")
    message = str(raised.value)
    assert len(message.splitlines()) == 1 and says in message, message
    assert message.startswith(str(FEEDBACK_DIR / "export.json")), message
    assert not (tmp_path / "prepared").exists()

{%- if cookiecutter.task in ["speech-recognition", "text-generation"] %}


def test_uncertain_needs_answers_with_a_score(project, tmp_path) -> None:
    traffic.set_keys(tmp_path / "params.yaml", strategy="uncertain")
    result = CliRunner().invoke(app, ["harvest"])
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert line.startswith("error: harvest.strategy: uncertain needs answers with a score"), line
    assert not HARVEST_DIR.exists()
{%- endif %}
{%- endif %}
