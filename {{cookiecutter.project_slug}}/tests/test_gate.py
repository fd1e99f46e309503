"""`bench` measures and `gate` judges: the gate's logic, never this machine's speed."""

import json

import pytest

from {{ cookiecutter.package_name }}.core.errors import FlywheelError
from {{ cookiecutter.package_name }}.lifecycle.gate import gate
from {{ cookiecutter.package_name }}.serving.bench import bench, percentiles
from {{ cookiecutter.package_name }}.tasks import task
from {{ cookiecutter.package_name }}.training.baselines import shortfall

MEASURED = {
    "device": "cpu",
    "predict_latency_ms": {
        "single": {"p50": 4.0, "p95": 6.0, "n": 50},
        "batched": {"p50": 20.0, "p95": 25.0, "n": 50, "batch_size": 16},
    },
    "http_latency_ms": {"single": {"p50": 8.0, "p95": 12.5, "n": 50}},
    "http_load": {
        "1": {"concurrency": 1, "requests_per_second": 250.0, "p99": 9.0, "errors": 0},
        "32": {"concurrency": 32, "requests_per_second": 800.0, "p99": 220.0, "errors": 0},
    },
    "model_size_mb": 3.2,
    "train_samples_per_second": 900.0,
    "peak_memory_mb": 700.0,
}


def with_budgets(params, **budgets):
    return params.model_copy(update={"budgets": params.budgets.model_copy(update=budgets)})


@pytest.fixture
def measured(tmp_path):
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(MEASURED), encoding="utf-8")
    return path


def test_generous_budgets_pass(trained, measured) -> None:
    params = with_budgets(
        trained.params, max_p95_latency_ms=1000, max_model_size_mb=100, max_peak_memory_mb=8000
    )
    verdicts = gate(params, measured)
    assert [v.passed for v in verdicts] == [True, True, True]


def test_a_budget_far_below_the_measurement_fails_naming_metric_value_and_budget(
    trained, measured
) -> None:
    params = with_budgets(trained.params, max_p95_latency_ms=0.5)
    with pytest.raises(FlywheelError) as error:
        gate(params, measured)
    message = str(error.value)
    assert "HTTP p95 latency (ms) is 12.5, over its budget of 0.5" in message
    assert "budgets.max_p95_latency_ms" in message and "\n" not in message


def test_every_metric_over_budget_is_counted(trained, measured) -> None:
    params = with_budgets(
        trained.params, max_p95_latency_ms=0.5, max_model_size_mb=0.1, max_peak_memory_mb=1
    )
    with pytest.raises(FlywheelError, match="2 more outside budget"):
        gate(params, measured)


def test_a_value_equal_to_its_budget_passes(trained, measured) -> None:
    params = with_budgets(trained.params, max_model_size_mb=3.2)
    assert all(v.passed for v in gate(params, measured))


@pytest.mark.parametrize(
    ("budgets", "message"),
    [
        ({"min_requests_per_second": 1000}, "HTTP requests/s at 32 clients is 800.0, under its"),
        ({"max_p99_latency_ms": 100}, "HTTP p99 latency at 32 clients (ms) is 220.0, over its"),
    ],
)
def test_the_gate_can_hold_throughput_and_p99_under_load(trained, measured, budgets, message):
    assert all(v.passed for v in gate(trained.params, measured))  # null budgets: not checked
    relaxed = {"min_requests_per_second": 500, "max_p99_latency_ms": 300}
    assert len(gate(with_budgets(trained.params, **relaxed), measured)) == 6
    with pytest.raises(FlywheelError, match="gate failed: ") as error:
        gate(with_budgets(trained.params, **budgets), measured)
    assert message in str(error.value)


def test_gate_without_bench_says_what_to_run(trained, tmp_path) -> None:
    with pytest.raises(FlywheelError, match="not found: run `bench` first"):
        gate(trained.params, tmp_path / "bench.json")


def test_an_incomplete_bench_file_is_named(trained, tmp_path) -> None:
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"model_size_mb": 1.0}), encoding="utf-8")
    with pytest.raises(FlywheelError, match="missing measurements"):
        gate(trained.params, path)


def test_percentiles_of_known_samples() -> None:
    result = percentiles([float(value) for value in range(1, 101)])
    assert result["p50"] == pytest.approx(50.5)
    assert result["p95"] == pytest.approx(95.05)
    assert result["p99"] == pytest.approx(99.01)
    assert result["n"] == 100


def test_bench_writes_every_measurement(trained) -> None:
    results = bench(trained.params, requests=5, batch_size=2, train_steps=2, load_requests=20)
    assert json.loads((trained.workspace / "bench.json").read_text()) == results
    for kind in ("single", "batched"):
        latency = results["predict_latency_ms"][kind]
        assert 0 < latency["p50"] <= latency["p95"]
    assert results["http_latency_ms"]["single"]["n"] == 5
    for clients, run in results["http_load"].items():
        assert run["concurrency"] == int(clients) and run["errors"] == 0
        assert run["n"] == 20 and run["requests_per_second"] > 0
        assert 0 < run["p50"] <= run["p95"] <= run["p99"]
    assert results["model_size_mb"] > 0
    assert results["train_samples_per_second"] > 0
    assert results["peak_memory_mb"] > 0


def scored(model: float, baseline: float) -> dict:
    """metrics.json with the model and the baseline it must beat at these primary scores."""
    baselines = {name: {task.JUDGING.primary_metric: 0.5} for name in task.JUDGING.baselines}
    baselines[task.JUDGING.baseline_to_beat] = {task.JUDGING.primary_metric: baseline}
    return {task.JUDGING.primary_metric: model, "baselines": baselines}


def better_and_worse() -> tuple[float, float]:
    return (0.9, 0.6) if task.JUDGING.greater_is_better else (0.1, 0.4)


def test_a_model_behind_its_baseline_gets_one_warning_line_naming_both_scores() -> None:
    good, bad = better_and_worse()
    assert shortfall(scored(good, bad)) is None
    warning = shortfall(scored(bad, good))
    assert warning is not None
    judging = task.JUDGING
    expected = f"test {judging.primary_metric} ({bad}) does not beat the {judging.baseline_to_beat}"
    assert expected in warning
    assert f": {good}): try model.pretrained" in warning and "\n" not in warning


@pytest.mark.parametrize("required, passes", [(None, True), (0.2, True), (0.5, False)])
def test_the_gate_can_require_a_margin_over_the_baseline(
    trained, measured, tmp_path, required, passes
) -> None:
    good, bad = better_and_worse()  # a lead of 0.3
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps(scored(good, bad)), encoding="utf-8")
    params = with_budgets(trained.params, min_margin_over_baseline=required)
    if passes:
        assert all(verdict.passed for verdict in gate(params, measured, metrics))
        return
    with pytest.raises(FlywheelError) as error:
        gate(params, measured, metrics)
    assert (
        f"margin over the {task.JUDGING.baseline_to_beat} baseline is 0.3, under its minimum of 0.5"
        in str(error.value)
    )
    assert "budgets.min_margin_over_baseline" in str(error.value)


def test_a_required_margin_without_metrics_names_the_verb_to_run(
    trained, measured, tmp_path
) -> None:
    params = with_budgets(trained.params, min_margin_over_baseline=0.01)
    with pytest.raises(FlywheelError, match=r"metrics\.json not found: run `evaluate` first"):
        gate(params, measured, tmp_path / "metrics.json")
