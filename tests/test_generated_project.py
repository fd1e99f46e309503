"""Each task's generated project trains, passes its own checks, and its README works as written."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tomllib
import urllib.request
from pathlib import Path

import pytest
from helpers import FACTS, TASKS, Baked, background, free_port, readme_commands, with_params
from project_env import env_with
from torch_index import TORCH_WHEELS, torch_index

# Every key of metrics.json besides the baselines, as each task folder's facts.yaml lists them.
METRICS = {task: set(facts["metrics"]) for task, facts in FACTS.items()}
# The speech tasks train on one worker, where the intelligibility test finds both trained.
SPEECH = pytest.mark.xdist_group("speech")
# The serve and gate sections use the text project the Quick start test trained on their worker.
TEXT = pytest.mark.xdist_group("text")
GROUP = {"speech-recognition": SPEECH, "text-to-speech": SPEECH, "text-classification": TEXT}


# What the libraries print that a user cannot act on, and `train` silences: Python warnings,
# MLflow's INFO lines, transformers' checkpoint-order and image-backend notices.
NOISE = re.compile(
    r"^.*(?:\w+Warning:|INFO mlflow|uv_utils|mtime may not be reliable|requires torchvision).*$",
    re.M,
)


@pytest.mark.slow
@pytest.mark.parametrize(
    "task",
    [pytest.param(task, marks=GROUP.get(task, ())) for task in TASKS],
)
def test_readme_workflow_and_own_checks(
    task: str, projects: dict[str, Baked], project_bin: Path
) -> None:
    """The Quick start as written (the shared environment stands in for `make setup`), then the
    project's own lint and test suite."""
    project = projects[task]
    # One mypy cache for the projects a worker lints: the libraries' stubs are read once (7 s
    # a project cold, 1 s warm), and mypy checks each cached module against its source's hash.
    # One per worker: the cache is SQLite, which one writer at a time holds.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    mypy_cache = project_bin.parent.parent / "mypy-cache" / worker
    env = {**env_with(project_bin, project.path), "MYPY_CACHE_DIR": str(mypy_cache)}
    commands = readme_commands(project.text("README.md"), "Quick start")
    assert commands[0] == "make setup"
    for command in [*commands[1:], "make lint", "make info"]:
        run = project.run("bash", "-c", command, env=env, timeout=900)
        assert run.returncode == 0, f"{command}\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}"
        if command == "make train":
            assert not NOISE.findall(run.stderr), run.stderr[-4000:]
        if command == "make predict":
            predictions = [
                json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")
            ]
            assert predictions, run.stdout
    metrics = json.loads(project.text("metrics.json"))
    assert set(metrics) >= METRICS[task]
    assert (project.path / "mlflow.db").is_file()
    assert (project.path / "models" / "model" / "config.json").is_file()


def trained(project: Baked, env: dict[str, str]) -> None:
    if not (project.path / "models" / "model" / "config.json").is_file():
        run = project.run("make", "train", env=env, timeout=900)
        assert run.returncode == 0, run.stderr[-3000:]


@pytest.fixture
def trained_text(projects: dict[str, Baked], project_bin: Path) -> tuple[Baked, dict[str, str]]:
    """The shared text project, trained once, and the environment its commands run in."""
    project = projects["text-classification"]
    env = env_with(project_bin, project.path)
    trained(project, env)
    return project, env


# The recognizer's CER on the test utterances: the synthesizer's must be at most this...
MAX_TRAINED_CER = 0.35
# ...and the untrained synthesizer's at least this (its frames carry no letters).
MIN_UNTRAINED_CER = 0.8

UNTRAINED_SYNTHESIS = """
import sys
from pathlib import Path
from {package}.core.config import load_params
from {package}.data.prepare import label_names, load_prepared
from {package}.training.evaluate import evaluate_model
from {package}.tasks import task

params, splits = load_params(), load_prepared()
processor, model = task.build(params, splits["train"], label_names(splits["train"]))
evaluate_model(params, processor, model, splits["test"], Path(sys.argv[1]), metrics_file=None)
"""
TRANSCRIBE = """
import csv, json, sys
from pathlib import Path
import jiwer
from {package}.serving.predict import Predictor

predictor = Predictor()
for folder in map(Path, sys.argv[1:]):
    rows = list(csv.DictReader((folder / "metadata.csv").open(encoding="utf-8")))
    heard = predictor.predict([(folder / row["file_name"]).read_bytes() for row in rows])
    said = [row["transcription"] for row in rows]
    cer = jiwer.cer(said, [h["text"] for h in heard])
    print(json.dumps({{"cer": cer, "utterances": len(rows)}}))
"""


@pytest.mark.slow
@SPEECH
def test_the_recognizer_understands_the_synthesizer(
    projects: dict[str, Baked], project_bin: Path, tmp_path: Path
) -> None:
    """Intelligibility of text to speech: the speech-recognition project, trained on the same toy
    language, transcribes the TTS project's test-split audio (written by its `evaluate`), far
    better than the audio of the untrained TTS model."""
    recognizer, synthesizer = projects["speech-recognition"], projects["text-to-speech"]
    for project in (recognizer, synthesizer):
        trained(project, env_with(project_bin, project.path))
    spoken = synthesizer.path / "plots" / "evaluate" / "synthesized"
    if not (spoken / "metadata.csv").is_file():
        run = synthesizer.run("make", "evaluate", env=env_with(project_bin, synthesizer.path))
        assert run.returncode == 0, run.stderr[-3000:]
    untrained = synthesizer.run(
        "python",
        "-c",
        UNTRAINED_SYNTHESIS.format(package=synthesizer.path.name),
        str(tmp_path),
        env=env_with(project_bin, synthesizer.path),
    )
    assert untrained.returncode == 0, untrained.stderr[-3000:]
    run = recognizer.run(
        "python",
        "-c",
        TRANSCRIBE.format(package=recognizer.path.name),
        str(spoken),
        str(tmp_path / "synthesized"),
        env=env_with(project_bin, recognizer.path),
    )
    assert run.returncode == 0, run.stderr[-3000:]
    heard = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    scores = dict(zip(("trained", "untrained"), heard, strict=True))
    print(f"recognizer CER on synthesized test utterances: {json.dumps(scores)}")
    assert scores["trained"]["utterances"] == scores["untrained"]["utterances"] > 0
    assert scores["trained"]["cer"] <= MAX_TRAINED_CER, scores
    assert scores["untrained"]["cer"] >= MIN_UNTRAINED_CER, scores


@pytest.mark.slow
@TEXT
def test_readme_serve_section_works(trained_text: tuple[Baked, dict[str, str]]) -> None:
    """`make serve` as written, and the README's curl line against it (on a free port)."""
    project, env = trained_text
    port = free_port()
    [serve] = readme_commands(project.text("README.md"), "Serve")
    assert serve == "make serve"
    health = f"http://127.0.0.1:{port}/health"
    with background(["make", "serve", f"PORT={port}"], project.path, env, health):
        curl = project.text("README.md").split("From another terminal:", 1)[1]
        [command] = readme_commands("## Serve\n" + curl, "Serve")
        run = project.run("bash", "-c", command.replace(":8000", f":{port}"), env=env)
        assert run.returncode == 0, run.stderr
        [prediction] = json.loads(run.stdout)["predictions"]
        assert prediction["label"] in {"negative", "positive"}


@pytest.mark.slow
def test_readme_setup_installs_the_project_from_its_lock(
    template: Path, cookies, project_bin: Path
) -> None:
    """On a bare project, `make setup` as written writes uv.lock and installs exactly it; a
    pyproject.toml changed without `make lock` stops it with uv's one line. (`project_bin`:
    its build has put torch's wheel in TORCH_WHEELS, which this test's local index serves.)"""
    result = cookies.bake(template=str(template))
    assert result.exit_code == 0, result.exception
    project = Baked(result.project_path)
    assert not (project.path / "uv.lock").exists()  # resolved at the first setup, not at bake
    wrong = project.run("make", "setup", "ACCELERATOR=gpu")
    assert wrong.returncode != 0 and "ACCELERATOR=gpu: choose cpu or cu128" in wrong.stderr
    assert not (project.path / ".venv").exists()
    # An index that does not answer (a closed port here): one line naming the way round it.
    closed = free_port()
    offline = project.run("make", "setup", f"PYTORCH_INDEX=http://127.0.0.1:{closed}")
    said = [line for line in offline.stderr.splitlines() if line.strip()]
    assert offline.returncode != 0 and len(said) == 1, offline.stderr
    assert f"127.0.0.1:{closed} is unreachable" in said[0]
    assert "make setup TORCH_INDEX=https://pypi.org/simple" in said[0]
    assert not (project.path / ".venv").exists()
    # PyTorch's indexes, or where they are unreachable a local one with pip's torch wheel.
    index = torch_index(TORCH_WHEELS)
    through = [f"TORCH_INDEX={index}"] if index else []
    # Compiling 21,000 files to bytecode (a minute on two busy cores) is not what this checks.
    env = {"UV_COMPILE_BYTECODE": "0"}
    run = project.run("make", "setup", *through, env=env, timeout=1500)
    assert run.returncode == 0, f"{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    lock = tomllib.loads(project.text("uv.lock"))
    locked = {package["name"]: package.get("version") for package in lock["package"]}
    # One torch per build (cpu, cu128) where PyTorch's indexes are reachable: setup takes cpu's.
    locked["torch"] = {p["version"] for p in lock["package"] if p["name"] == "torch"}
    info = project.run("make", "info")
    assert info.returncode == 0 and ".venv/bin/python" in info.stdout
    python = str(project.path / ".venv/bin/python")
    # torch loads (its compiled parts), the others' installed versions are read from their
    # metadata: importing them without bytecode would compile thousands of modules (5 s).
    check = project.run(
        python,
        "-c",
        "import json, torch\n"
        "from importlib.metadata import version\n"
        "from flywheel_demo.tracking import runs\n"
        "print(json.dumps([torch.__version__, version('transformers'), version('mlflow'),"
        " runs.dependencies_hash()]))",
    )
    assert check.returncode == 0, check.stderr
    torch_version, transformers_version, mlflow_version, recorded = json.loads(check.stdout)
    assert torch_version in locked["torch"] and "+cu" not in torch_version
    assert [transformers_version, mlflow_version] == [locked["transformers"], locked["mlflow"]]
    lock_hash = hashlib.sha256((project.path / "uv.lock").read_bytes()).hexdigest()
    assert recorded == ["uv.lock", lock_hash]  # what each run tags as its dependency lock

    # A dependency added without `make lock`: setup refuses, naming the fix; the lock stays.
    pyproject = project.text("pyproject.toml")
    added = pyproject.replace("dependencies = [\n", 'dependencies = [\n  "six>=1.16",\n', 1)
    (project.path / "pyproject.toml").write_text(added, encoding="utf-8")
    stale = project.run("make", "setup", *through, env=env, timeout=600)
    assert stale.returncode != 0
    assert "`uv lock`" in stale.stderr and "--locked" in stale.stderr, stale.stderr[-2000:]
    assert hashlib.sha256((project.path / "uv.lock").read_bytes()).hexdigest() == lock_hash


def test_makefile_help_lists_every_readme_target(projects: dict[str, Baked]) -> None:
    project = projects[TASKS[0]]
    help_text = project.run("make").stdout
    for command in readme_commands(project.text("README.md"), "Quick start"):
        assert command.startswith("make ")
        assert command.split()[1] in help_text


@pytest.mark.slow
@TEXT
def test_readme_export_section_works(trained_text: tuple[Baked, dict[str, str]]) -> None:
    """`make export` as written: the ONNX graph, checked against PyTorch on the test split."""
    project, env = trained_text
    assert readme_commands(project.text("README.md"), "Export to ONNX") == ["make export"]
    run = project.run("make", "export", env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    shown = re.search(r"from PyTorch on (\d+) test inputs: (\S+)$", run.stdout, re.M)
    assert shown and int(shown[1]) > 0 and float(shown[2]) < 1e-4, run.stdout
    source = json.loads(project.text("models/onnx/source.json"))
    assert source["checksum"] and source["test_inputs"] == int(shown[1])


@pytest.mark.slow
@TEXT
def test_readme_model_card_section_works(trained_text: tuple[Baked, dict[str, str]]) -> None:
    """`make card` as written, then with RUN=: the card of the run that trained the model."""
    project, env = trained_text
    assert readme_commands(project.text("README.md"), "Model card") == [
        "make card",
        "make card RUN=<run id>",
    ]
    run = project.run("make", "card", env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    found = re.search(r"from run (\w+)", run.stdout)
    assert found, run.stdout
    run_id = found[1]
    card = project.text("MODEL_CARD.md")
    assert card.startswith("---\n") and f"make reproduce RUN={run_id}" in card
    again = project.run("make", "card", f"RUN={run_id}", env=env)
    assert again.returncode == 0 and f"from run {run_id}" in again.stdout, again.stderr[-3000:]
    unknown = project.run("make", "card", "RUN=nope", env=env)
    assert unknown.returncode != 0
    assert "error: run nope is not in the MLflow store" in unknown.stderr


@pytest.mark.slow
@TEXT
def test_readme_tune_section_works(trained_text: tuple[Baked, dict[str, str]]) -> None:
    """`make tune` with TRIALS= and APPLY= as written, on a budget of two trials: the study, the
    reviewable params.best.yaml, then the same study resumed and its best values applied."""
    project, env = trained_text
    assert readme_commands(project.text("README.md"), "Hyper-parameter search") == [
        "make tune",
        "make tune TRIALS=40",
        "make tune APPLY=1",
    ]
    params = project.text("params.yaml")
    try:
        run = project.run("make", "tune", "TRIALS=2", env=env, timeout=900)
        assert run.returncode == 0, run.stderr[-3000:]
        assert "0 of 2 trials done, 2 to run" in run.stdout, run.stdout[-3000:]
        assert re.search(r"^trial 1: ", run.stdout, re.M), run.stdout[-3000:]
        best = project.text("params.best.yaml")
        applied = project.run("make", "tune", "TRIALS=2", "APPLY=1", env=env)
        assert applied.returncode == 0, applied.stderr[-3000:]
        assert "2 of 2 trials done, 0 to run" in applied.stdout
        assert project.text("params.yaml") == best
    finally:
        (project.path / "params.yaml").write_text(params, encoding="utf-8")


LINKED_VERSIONS = """import sys, mlflow
client = mlflow.MlflowClient("sqlite:///mlflow.db")
source = client.get_model_version(sys.argv[1], sys.argv[2]).source
print(client.get_logged_model(source.removeprefix("models:/")).tags["mlflow.modelVersions"])
"""


@pytest.mark.slow
@TEXT
def test_readme_model_registry_section_works(trained_text: tuple[Baked, dict[str, str]]) -> None:
    """`make promote` as written (the first champion, then the same run again), `make serve`
    answering from the champion alias, and `make rollback` refused with no earlier champion."""
    project, env = trained_text
    commands = readme_commands(project.text("README.md"), "Model registry")
    promote, promote_run, serve, rollback = commands
    assert (promote, promote_run) == ("make promote", "make promote RUN=<run id>")
    assert rollback == "make rollback", rollback
    run = project.run("make", "promote", env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    name = project.path.name
    promoted = re.search(rf"promoted {name} version (\d+) \(run (\w+)\) to @champion", run.stdout)
    assert promoted, run.stdout
    again = project.run("make", "promote", f"RUN={promoted[2]}", env=env)
    assert again.returncode == 0 and "is already @champion" in again.stdout, again.stderr[-3000:]
    # The local store's logged model names its version once: the UI shows it registered.
    linked = project.run("python", "-c", LINKED_VERSIONS, name, promoted[1], env=env)
    assert linked.returncode == 0, linked.stderr[-3000:]
    assert [(v["name"], str(v["version"])) for v in json.loads(linked.stdout)] == [
        (name, promoted[1])
    ]
    port = free_port()
    health = f"http://127.0.0.1:{port}/health"
    with (
        background([*serve.split(), f"PORT={port}"], project.path, env, health),
        urllib.request.urlopen(health, timeout=10) as response,
    ):
        answer = json.loads(response.read())
    assert answer["model"] == f"models:/{name}@champion"
    assert answer["run_id"] == promoted[2]
    # One champion: nothing to roll back to, said in one line (test_registry.py rolls back).
    refused = project.run(*rollback.split(), env=env)
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert refused.returncode != 0 and len(errors) == 1, refused.stderr[-3000:]
    assert errors[0].startswith(
        f"error: rollback: @champion version {promoted[1]} replaced no earlier champion"
    ), errors


BUDGET_LINE = r"(?m)^(  max_(?:p95_latency_ms|model_size_mb|peak_memory_mb): )[\d.]+"


@pytest.mark.slow
@TEXT
def test_readme_gate_section_works(trained_text: tuple[Baked, dict[str, str]]) -> None:
    """`make bench` and `make gate` as written. The budgets are set by the test, far above and
    far below anything measurable, so the verdicts do not depend on this machine's speed."""
    project, env = trained_text
    assert readme_commands(project.text("README.md"), "Speed and size gates") == [
        "make bench",
        "make gate",
    ]
    bench = project.run("make", "bench", env=env, timeout=600)
    assert bench.returncode == 0, bench.stderr[-3000:]
    assert "HTTP, 1 input: p50 / p95" in bench.stdout
    measured = json.loads(project.text("bench.json"))
    assert measured["http_latency_ms"]["single"]["n"] == 50
    # The bounded load run: 1 and 32 clients against the batching server, no request lost.
    assert [run["errors"] for run in measured["http_load"].values()] == [0, 0]
    assert measured["http_load"]["32"]["requests_per_second"] > 0
    params = project.text("params.yaml")
    try:
        for budget, expected in (("1000000", 0), ("0.001", 2)):
            relaxed = re.sub(BUDGET_LINE, rf"\g<1>{budget}", params)
            (project.path / "params.yaml").write_text(relaxed, encoding="utf-8")
            gate = project.run("make", "gate", env=env)
            assert gate.returncode == expected, gate.stdout + gate.stderr
        assert "error: gate failed: HTTP p95 latency (ms) is" in gate.stderr
        assert "(budgets.max_p95_latency_ms in params.yaml); 2 more outside budget" in gate.stderr
    finally:
        (project.path / "params.yaml").write_text(params, encoding="utf-8")


# Texts and their classes from the embedded data's generator with another seed, none of them in
# the prepared splits (`prepare` leaves out labelled copies of held-out inputs): new traffic.
NEW_TEXTS = """
import json
from {package}.core.config import load_params
from {package}.data.prepare import load_prepared
from {package}.tasks import task
params = load_params()
seen = {{text for split in load_prepared().values() for text in split["input"]}}
fresh = task.embedded_dataset(params.model_copy(update={{"seed": params.seed + 1}}))
names = fresh.features["label"].names
rows = {{row["input"]: names[row["label"]] for row in fresh if row["input"] not in seen}}
print(json.dumps(list(rows.items())[:60]))
"""
FEEDBACK_ROWS_TAG = """
import mlflow
[run] = mlflow.search_runs(
    search_all_experiments=True, order_by=["attributes.start_time DESC"], max_results=1,
    output_format="list",
)
print(run.info.run_id, run.data.tags["lineage.feedback_rows"])
"""


@pytest.mark.slow
@TEXT
def test_readme_loop_section_works(
    trained_text: tuple[Baked, dict[str, str]], tmp_path: Path
) -> None:
    """The loop as written: `make serve` keeping its inputs, new texts sent to it, `make
    monitor`, `make harvest`, a Label Studio export (made by the test as Label Studio writes one,
    each task labelled with its text's class) copied from ~/Downloads as written, `make train`
    with it, `make shadow` (and the Shadow replay section's `CANDIDATE=<run id>`) and `make
    promote`. The shadow budgets are the test's, so the verdict does not depend on this
    machine's load; the last test of the text project."""
    project, env = trained_text
    commands = readme_commands(project.text("README.md"), "The loop")
    serve, monitor, harvest, copy, train, shadow, promote = commands
    assert (serve, monitor, harvest) == ("make serve", "make monitor", "make harvest")
    assert (train, shadow, promote) == ("make train", "make shadow", "make promote")
    assert copy == "cp ~/Downloads/project-*.json data/feedback/", copy
    params = project.text("params.yaml")
    loop = {
        "keep_inputs": "true",
        "min_records": 10,
        "min_agreement": 0,
        "max_latency_ratio": 50,
        "max_memory_ratio": 50,
    }
    package = project.path.name
    # What the README's serve section's request left: this test counts its own traffic.
    shutil.rmtree(project.path / "monitoring", ignore_errors=True)
    try:
        (project.path / "params.yaml").write_text(with_params(params, loop), encoding="utf-8")
        first = project.run("make", "promote", env=env)  # the first champion, or already it
        assert first.returncode == 0, first.stderr[-3000:]
        listed = project.run("python", "-c", NEW_TEXTS.format(package=package), env=env)
        assert listed.returncode == 0, listed.stderr[-3000:]
        labelled = dict(json.loads(listed.stdout))
        port = free_port()
        with background(
            [*serve.split(), f"PORT={port}"], project.path, env, f"http://127.0.0.1:{port}/health"
        ):
            for text in labelled:
                body = json.dumps({"texts": [text]}).encode()
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/predict", body, {"Content-Type": "application/json"}
                )
                with urllib.request.urlopen(request, timeout=30) as answer:
                    assert answer.status == 200
        drift = project.run(*monitor.split(), env=env, timeout=600)
        assert drift.returncode in (0, 1), drift.stderr[-3000:]  # 1: drifted, a reason to go on
        count = len(labelled)
        assert json.loads(project.text("monitoring/drift.json"))["requests"] == count
        harvested = project.run(*harvest.split(), env=env, timeout=600)
        assert harvested.returncode == 0, harvested.stderr[-3000:]
        tasks = json.loads(project.text("harvest/tasks.json"))
        chosen = len(tasks)  # harvest.count of them at most: the least sure first
        assert chosen == min(count, 100), harvested.stdout
        said = f"harvested {chosen} of {count} kept inputs (the least sure first)"
        assert said in harvested.stdout, harvested.stdout
        export = [
            {
                "id": number,
                "data": entry["data"],
                "annotations": [
                    {
                        "id": number,
                        "result": [
                            {
                                **entry["predictions"][0]["result"][0],
                                "value": {"choices": [labelled[entry["data"]["input"]]]},
                            }
                        ],
                        "was_cancelled": False,
                        "ground_truth": False,
                        "completed_by": 1,
                        "updated_at": "2026-12-07T10:00:00.000000Z",
                    }
                ],
            }
            for number, entry in enumerate(tasks, 1)
        ]
        downloads = tmp_path / "Downloads"
        downloads.mkdir()
        (downloads / "project-1-at-2026-12-07-10-00-8d2f.json").write_text(json.dumps(export))
        copied = subprocess.run(
            ["bash", "-c", copy], cwd=project.path, env={**env, "HOME": str(tmp_path)}
        )
        assert copied.returncode == 0
        retrained = project.run(*train.split(), env=env, timeout=900)
        assert retrained.returncode == 0, retrained.stderr[-3000:]
        assert f"({chosen} from data/feedback)" in retrained.stdout, retrained.stdout
        tag = project.run("python", "-c", FEEDBACK_ROWS_TAG, env=env)
        run_id, rows = tag.stdout.split()
        assert rows == str(chosen), tag.stderr[-3000:]
        replayed = project.run(*shadow.split(), env=env, timeout=600)
        assert replayed.returncode == 0, replayed.stdout[-3000:] + replayed.stderr[-3000:]
        assert f"replayed {count} kept inputs: agreement " in replayed.stdout, replayed.stdout
        report = json.loads(project.text("shadow/shadow.json"))
        assert report["passed"] and report["champion"]["run_id"] != report["candidate"]["run_id"]
        # The Shadow replay section's other line, the candidate named by its run.
        section = readme_commands(project.text("README.md"), "Shadow replay")
        assert section == ["make serve", "make shadow", "make shadow CANDIDATE=<run id>"], section
        by_run = project.run(*section[2].replace("<run id>", run_id).split(), env=env)
        assert by_run.returncode == 0, by_run.stdout[-3000:] + by_run.stderr[-3000:]
        assert json.loads(project.text("shadow/shadow.json"))["candidate"]["run_id"] == run_id
        promoted = project.run(*promote.split(), env=env)
        # Better on the test split or not: either way one line says which.
        said = promoted.stdout if promoted.returncode == 0 else promoted.stderr
        assert re.search(r"^(error: not promoted|promoted )", said, re.M), said[-3000:]
    finally:
        (project.path / "params.yaml").write_text(params, encoding="utf-8")
        for folder in ("monitoring", "harvest", "shadow"):
            shutil.rmtree(project.path / folder, ignore_errors=True)
        for export_file in (project.path / "data" / "feedback").glob("*.json"):
            export_file.unlink()
