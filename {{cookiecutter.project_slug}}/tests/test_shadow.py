"""Shadow replay: the inputs a server kept, answered by the champion and a candidate; the report,
its budgets in one line, and how kept inputs expire."""

import json
import os
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import traffic
from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.core.paths import MODEL_DIR, MONITOR_DIR, SHADOW_DIR
from {{ cookiecutter.package_name }}.data.prepare import load_prepared
from {{ cookiecutter.package_name }}.lifecycle.monitor import KEPT_INPUTS, expire_inputs, kept_inputs
from {{ cookiecutter.package_name }}.lifecycle.shadow import PLOT, REPORT
from {{ cookiecutter.package_name }}.serving.predict import Predictor, to_model_input
from {{ cookiecutter.package_name }}.tasks import task

# Inputs kept and replayed: enough for percentiles, few enough for seconds.
KEPT = 12


@pytest.fixture
def kept(trained, tmp_path, monkeypatch):
    """A project folder whose server kept KEPT answered inputs; the inputs."""
    (tmp_path / "data").symlink_to(trained.workspace / "data")
    (tmp_path / "params.yaml").write_text(
        (trained.workspace / "params.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)
    return traffic.keep(trained.workspace / MODEL_DIR, trained.params.monitor, MONITOR_DIR, KEPT)


def _shadow(trained, *options: str):
    model = str(trained.workspace / MODEL_DIR)
    return CliRunner().invoke(app, ["shadow", "--candidate", model, "--champion", model, *options])


def test_the_recorder_keeps_each_input_with_its_answer(trained, kept) -> None:
    lines = kept_inputs(MONITOR_DIR, days=1)
    assert [line["input"] for line in lines] == [to_model_input(raw) for raw in kept]
    predictor = Predictor(trained.workspace / MODEL_DIR)
    first = predictor.predict([kept[0]])[0]
    assert lines[0]["prediction"] == {
        key: value for key, value in first.items() if not key.endswith("_base64")
    }


def test_a_candidate_like_the_champion_passes(trained, kept) -> None:
    # Budgets a busy test machine cannot miss by chance: the same model on both sides.
    traffic.set_keys(Path("params.yaml"), max_latency_ratio=50, max_memory_ratio=50)
    result = _shadow(trained)
    assert result.exit_code == 0, result.output
    [line] = result.output.strip().splitlines()
    assert line.startswith(f"replayed {KEPT} kept inputs: agreement 1.0 (min "), line
    report = json.loads((SHADOW_DIR / REPORT).read_text(encoding="utf-8"))
    assert report["passed"] and report["missed"] == []
    assert report["agreement"]["per_input"] == [1.0] * KEPT
    assert report["champion"]["run_id"] == report["candidate"]["run_id"] != ""
    for side in ("champion", "candidate"):
        assert 0 < report["latency_ms"][side]["p50"] <= report["latency_ms"][side]["p95"]
        if os.path.exists("/proc/self/clear_refs"):  # measured where Linux resets the peak
            assert report["peak_memory_mb"][side] is not None
    assert (SHADOW_DIR / PLOT).stat().st_size > 0


def test_a_missed_budget_fails_in_one_line(trained, kept) -> None:
    traffic.set_keys(Path("params.yaml"), max_latency_ratio=0.001)
    result = _shadow(trained)
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    assert errors[0].startswith("error: shadow: the candidate missed: p95 latency is x")
    assert "above shadow.max_latency_ratio 0.001" in errors[0]
    report = json.loads((SHADOW_DIR / REPORT).read_text(encoding="utf-8"))
    assert not report["passed"] and len(report["missed"]) == 1


def test_no_kept_inputs_is_one_line(trained, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_bytes((trained.workspace / "params.yaml").read_bytes())
    result = _shadow(trained)
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert "holds no inputs kept in the last 30 days: set monitor.keep_inputs: true" in line
    assert not SHADOW_DIR.exists()


def test_kept_inputs_expire(tmp_path) -> None:
    now = time.time()
    old, new = {"at": now - 3 * 86_400, "input": "old"}, {"at": now, "input": "new"}
    (tmp_path / KEPT_INPUTS).write_text(f"{json.dumps(old)}\n{json.dumps(new)}\n")
    (tmp_path / "inputs.1.jsonl").write_text(json.dumps(old) + "\n")
    os.utime(tmp_path / "inputs.1.jsonl", (now - 3 * 86_400, now - 3 * 86_400))
    assert [line["input"] for line in kept_inputs(tmp_path, days=2)] == ["new"]
    assert [line["input"] for line in kept_inputs(tmp_path, days=4)] == ["old", "old", "new"]
    expire_inputs(tmp_path, days=2)
    assert sorted(path.name for path in tmp_path.iterdir()) == [KEPT_INPUTS]


def test_the_task_measures_agreement_from_0_to_1(trained) -> None:
    test = load_prepared(names=("test",))["test"]
    inputs = [task.example_input(test.select([index])) for index in range(min(10, len(test)))]
    answers = Predictor(trained.workspace / MODEL_DIR).predict(inputs)
    assert all(task.agreement(answer, answer) == pytest.approx(1.0) for answer in answers)
    differing = [
        (one, other)
        for one in answers
        for other in answers
        if task.output_features(one) != task.output_features(other)
    ]
    assert differing, "the model gave the same answer to 10 different inputs"
    assert all(0.0 <= task.agreement(one, other) < 1.0 for one, other in differing[:5])
