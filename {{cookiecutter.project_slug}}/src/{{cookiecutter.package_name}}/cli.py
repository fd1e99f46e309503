"""The project's command line: `python -m {{ cookiecutter.package_name }} VERB`.

The Makefile, the DVC pipeline and CI call these verbs; each reads params.yaml.
"""

from __future__ import annotations

import functools
import json
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from . import __version__
from .core import gc_pause
from .core.errors import FlywheelError
from .core.paths import FEEDBACK_DIR, MODEL_DIR, PARAMS_FILE, PREDICTIONS_DIR
from .core.project import MODALITY, TASK
from .tasks import task
from .tracking import runs

app = typer.Typer(
    help="{{ cookiecutter.project_slug }}: {{ cookiecutter.__modality }} {{ cookiecutter.task }}.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

INPUTS_HELP = task.INPUTS.command_line_help
ParamsOption = Annotated[Path, typer.Option("--params", help="The run's configuration.")]
ModelOption = Annotated[Path, typer.Option("--model-dir", help="A trained model folder.")]
ModelSource = Annotated[
    str,
    typer.Option(
        "--model",
        "--model-dir",
        help="A trained model folder, or an MLflow model URI (models:/<name>@champion).",
    ),
]
RunOption = Annotated[
    str | None, typer.Option(help="The MLflow run (default: the one that trained the model).")
]


def one_at_a_time(command: Callable[..., Any]) -> Callable[..., Any]:
    """The command holds the project's run lock: a second one stops at once (runlock.py)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from .core.runlock import exclusive

        with exclusive(command.__name__):
            return command(*args, **kwargs)

    return wrapper


def friendly_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Problems the user can fix print one line and exit 1 instead of a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except FlywheelError as error:
            typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
            raise typer.Exit(1) from None

    return wrapper


def warn_below_baseline(metrics: dict[str, Any]) -> None:
    from .training.baselines import shortfall

    warning = shortfall(metrics)
    if warning:
        typer.secho(f"warning: {warning}", err=True, fg=typer.colors.YELLOW)


@app.callback()
def main() -> None:
    """Prepare data, train, evaluate and serve the {{ cookiecutter.task }} model."""


@app.command()
def info() -> None:
    """Show what this project trains and the environment it runs in."""
    typer.echo(f"package:  {{ cookiecutter.package_name }} {__version__}")
    typer.echo(f"modality: {MODALITY}")
    typer.echo(f"task:     {TASK}")
    typer.echo(f"python:   {platform.python_version()}")


@app.command()
@friendly_errors
@one_at_a_time
def prepare(params: ParamsOption = PARAMS_FILE) -> None:
    """Load the data named in params.yaml, split it, and save it under data/prepared."""
    from .core.config import load_params

    _prepare(load_params(params))


def _prepare(params: Any) -> None:
    from .data.prepare import prepare as prepare_data

    sizes = prepare_data(params)
    from_feedback, held_out = sizes.pop("feedback"), sizes.pop("feedback_held_out")
    shown = {name: str(size) for name, size in sizes.items()}
    if from_feedback or held_out:
        shown["train"] += f" ({from_feedback} from {FEEDBACK_DIR}"
        shown["train"] += f", {held_out} left out: in the held-out splits)" if held_out else ")"
    typer.echo("prepared " + ", ".join(f"{name}: {size}" for name, size in shown.items()))


@app.command()
@friendly_errors
@one_at_a_time
def train(
    params: ParamsOption = PARAMS_FILE,
    prepare_first: Annotated[
        bool,
        typer.Option(
            "--prepare",
            help="Prepare the data first, in the same process (`make train`: imports load once).",
        ),
    ] = False,
) -> None:
    """Train on the prepared data; save the model; log the run to MLflow."""
    from .core.config import load_params
    from .data.prepare import require_prepared
    from .training.device import per_process_batch, world_size
    from .training.train import train as train_model

    config = load_params(params)
    per_process_batch(config.train.batch_size, world_size())  # before `--prepare` writes data
    if prepare_first:
        _prepare(config)
    require_prepared()  # before the store is made: a refused `train` writes nothing
    runs.create_store_in_background()  # while the training libraries load
    result = train_model(config)
    if result.run_id:
        typer.echo(f"test metrics: {json.dumps(result.metrics)}")
        typer.echo(f"MLflow run:   {result.run_id}")
        warn_below_baseline(result.metrics)


@app.command()
@friendly_errors
@one_at_a_time
def evaluate(params: ParamsOption = PARAMS_FILE, model_dir: ModelOption = MODEL_DIR) -> None:
    """Score the trained model on the test split; write metrics.json and plots/."""
    from .core.config import load_params
    from .training.evaluate import evaluate as evaluate_model

    metrics = evaluate_model(load_params(params), model_dir)
    typer.echo(json.dumps(metrics, indent=2))
    warn_below_baseline(metrics)


@app.command()
@friendly_errors
def predict(
    inputs: Annotated[list[str], typer.Argument(help=INPUTS_HELP)],
    model: ModelSource = str(MODEL_DIR),
    out_dir: Annotated[
        Path,
        typer.Option(help=task.PREDICTIONS_OUT or "", hidden=task.PREDICTIONS_OUT is None),
    ] = PREDICTIONS_DIR,
) -> None:
    """Predict with the trained model; print one JSON line per input (speech: the WAV file
    written to --out-dir and its duration)."""
    from .lifecycle.registry import model_folder
    from .serving.predict import Predictor, read_inputs

    with model_folder(model) as model_dir:
        predictions = Predictor(model_dir).predict(read_inputs(inputs))
    predictions = task.write_predictions(inputs, predictions, out_dir)
    for number, (value, prediction) in enumerate(zip(inputs, predictions, strict=True), start=1):
        if prediction.get("skipped_characters"):
            skipped = prediction["skipped_characters"]
            typer.secho(
                f"warning: input {number}: skipped {skipped!r}: the model learned no sound for "
                "them",
                err=True,
                fg=typer.colors.YELLOW,
            )
        typer.echo(json.dumps({"input": value, **prediction}))


def require_free_port(host: str, port: int) -> None:
    """Refuses, in one line, an address something else already listens on."""
    import socket

    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            # As uvicorn binds: a port left in TIME_WAIT by a stopped server is free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as error:
        raise FlywheelError(
            f"--port {port}: cannot listen on {host}:{port} ({error.strerror}): stop what "
            "listens there, or pass another --port (or --host)"
        ) from None


@app.command()
@friendly_errors
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8000,
    model: ModelSource = str(MODEL_DIR),
    params: ParamsOption = PARAMS_FILE,
) -> None:
    """Serve the trained model over HTTP (FastAPI): GET /health, POST /predict."""
    from .core.config import load_params
    from .serving.serve import run

    settings = load_params(params)
    require_free_port(host, port)  # before seconds of loading, not after
    if settings.serve.engine == "vllm":  # text generation only (core/config.py says so otherwise)
        from .tasks.text_generation.vllm_server import run as run_vllm

        run_vllm(host, port, model)  # replaces this process with vLLM's
        return
    run(host, port, model, settings.serve, settings.monitor)


@app.command()
@friendly_errors
def monitor(params: ParamsOption = PARAMS_FILE, model_dir: ModelOption = MODEL_DIR) -> None:
    """Compare the traffic `serve` recorded (monitoring/) with the training split; write
    monitoring/drift.json and drift.png; exit 1 when a feature drifted beyond params.yaml's
    thresholds."""
    from .core.config import load_params
    from .core.paths import MONITOR_DIR
    from .lifecycle.monitor import DRIFT_FILE, DRIFT_PLOT
    from .lifecycle.monitor import monitor as check_drift

    shifts = check_drift(load_params(params), model_dir)
    spent = json.loads((MONITOR_DIR / DRIFT_FILE).read_text(encoding="utf-8"))["usage"]
    if spent is not None:  # generations that counted their tokens
        for day, totals in spent["days"].items():
            cost = f", cost {totals['cost']}" if "cost" in totals else ""
            typer.echo(
                f"{day}: {totals['requests']} requests, {totals['prompt_tokens']} prompt and "
                f"{totals['completion_tokens']} completion tokens{cost}"
            )
        for name in ("latency_ms", "ttft_ms"):
            if spent[name] is not None:
                typer.echo(f"{name}: p50 {spent[name]['p50']}, p95 {spent[name]['p95']}")
    for shift in shifts:
        p_value = "" if shift.p_value is None else f", p={shift.p_value:.2g}"
        verdict = "DRIFT" if shift.drifted else "ok"
        typer.echo(
            f"{shift.name:>16}: {shift.kind} {shift.statistic:.3f}{p_value} "
            f"(threshold {shift.threshold}) {verdict}"
        )
    typer.echo(f"wrote {MONITOR_DIR / DRIFT_FILE} and {MONITOR_DIR / DRIFT_PLOT}")
    drifted = [shift.name for shift in shifts if shift.drifted]
    if drifted:
        raise FlywheelError(
            f"the traffic drifted from the training split in {', '.join(drifted)}: look at "
            f"{MONITOR_DIR / DRIFT_PLOT}, then retrain on data like it or widen the thresholds"
        )
    typer.echo("no drift: the traffic looks like the training split")


@app.command()
@friendly_errors
def card(run: RunOption = None, model_dir: ModelOption = MODEL_DIR) -> None:
    """Write MODEL_CARD.md (Hugging Face model-card format) from a training run; log it there."""
    from .lifecycle.card import write_card
    from .tracking.runs import trained_run_id

    run_id = run or trained_run_id(model_dir)
    path = write_card(run_id)
    typer.echo(f"wrote {path} from run {run_id} (logged to the run); fill in its intended use")


@app.command()
@friendly_errors
@one_at_a_time
def tune(
    params: ParamsOption = PARAMS_FILE,
    trials: Annotated[
        int | None, typer.Option(help="Trials in the study (default: tune.trials).", min=1)
    ] = None,
    apply: Annotated[
        bool, typer.Option("--apply", help="Write the best values into params.yaml itself.")
    ] = False,
) -> None:
    """Search the `tune.search_space` of params.yaml with Optuna on the validation split; write
    the best values to params.best.yaml (resumes an interrupted study)."""
    from .core.config import load_params
    from .core.paths import BEST_PARAMS_FILE
    from .training.tune import tune as run_study

    result = run_study(load_params(params), params, trials, apply)
    metric = f"validation {task.JUDGING.selection_metric}"
    default = (
        f" (params.yaml's values: {result.default_value:.6g})"
        if result.default_value is not None
        else ""
    )
    typer.echo(
        f"study {result.study}: {result.finished} trials finished, {result.pruned} pruned; "
        f"best {metric} {result.best_value:.6g}{default}"
    )
    if result.parent_run_id:
        typer.echo(f"MLflow run:   {result.parent_run_id} (one child run per trial)")
    typer.echo(result.diff.rstrip() or f"{BEST_PARAMS_FILE}: params.yaml's values are the best")
    typer.echo(
        f"applied to {params}"
        if apply
        else f"wrote {BEST_PARAMS_FILE}: `make tune APPLY=1` or copy it over {params} to use them"
    )


@app.command()
@friendly_errors
def promote(
    run: RunOption = None, model_dir: ModelOption = MODEL_DIR, params: ParamsOption = PARAMS_FILE
) -> None:
    """Register a run's model in the MLflow Model Registry; move the alias `champion` to it
    only when it beats the champion by registry.min_improvement (params.yaml), else exit 1."""
    from .core.config import load_params
    from .lifecycle.registry import promote as promote_run
    from .tracking.runs import trained_run_id

    registry = load_params(params).registry
    run_id = run or trained_run_id(model_dir)
    typer.echo(promote_run(run_id, registry.min_improvement, registry.require_shadow).summary())


@app.command()
@friendly_errors
def shadow(
    candidate: Annotated[
        str,
        typer.Option(help="The model to judge: a folder, an MLflow model URI or a run id."),
    ] = str(MODEL_DIR),
    champion: Annotated[
        str | None,
        typer.Option(help="The model to judge it against (default: the registry's @champion)."),
    ] = None,
    params: ParamsOption = PARAMS_FILE,
) -> None:
    """Replay the inputs `serve` kept (monitor.keep_inputs) against the champion and the
    candidate; write shadow/shadow.json and shadow.png; exit 1 when the candidate misses a
    budget of params.yaml's shadow section."""
    from .core.config import load_params
    from .lifecycle.shadow import shadow as replay_shadow
    from .lifecycle.shadow import summary

    report = replay_shadow(load_params(params), candidate, champion)
    typer.echo(summary(report))
    if not report["passed"]:
        raise FlywheelError(f"shadow: the candidate missed: {'; '.join(report['missed'])}")


@app.command()
@friendly_errors
def harvest(params: ParamsOption = PARAMS_FILE) -> None:
    """Write the inputs `serve` kept (monitor.keep_inputs) that the model was least sure of, or a
    sample (harvest.strategy), as Label Studio tasks with its answers pre-filled:
    harvest/tasks.json and the labelling interface harvest/interface.xml."""
    from .core.config import load_params
    from .lifecycle.harvest import harvest as harvest_inputs
    from .lifecycle.harvest import summary

    typer.echo(summary(harvest_inputs(load_params(params))))


@app.command()
@friendly_errors
def rollback() -> None:
    """Move the alias `champion` back to the version it replaced (a running `serve` keeps the
    model it loaded: restart it)."""
    from .lifecycle.registry import rollback as roll_back

    typer.echo(roll_back().summary())


@app.command()
@friendly_errors
@one_at_a_time
def export(model_dir: ModelOption = MODEL_DIR) -> None:
    """Export the trained model, checked against it on the test split: to ONNX (models/onnx),
    which `serve.runtime: onnx` runs, or for text generation to a bfloat16 safetensors
    checkpoint (models/export), which `serve.engine: vllm` serves."""
    from .core.paths import CHECKPOINT_DIR, ONNX_DIR
    from .data.prepare import load_prepared
    from .serving.export import CHECKPOINT_DTYPE, ONNX_FILE, export_checkpoint, require_exportable
    from .serving.export import export as export_model
    from .serving.predict import Predictor

    if task.EXPORT_FORMAT == "safetensors":
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # of loading and writing a few files
        source = export_checkpoint(Predictor(model_dir), load_prepared(names=("test",))["test"])
        typer.echo(
            f"exported {CHECKPOINT_DIR} ({CHECKPOINT_DTYPE} safetensors): the same next token "
            f"as the trained model at {source['same_top_prediction']:.1%} of the positions of "
            f"{source['test_inputs']} test prompts (largest logit difference "
            f"{source['max_abs_difference']:.2e})"
        )
        return
    require_exportable()  # before loading anything
    source = export_model(Predictor(model_dir), load_prepared(names=("test",))["test"])
    typer.echo(
        f"exported {ONNX_DIR / ONNX_FILE}: largest difference from PyTorch on "
        f"{source['test_inputs']} test inputs: {source['max_abs_difference']:.2e}"
    )


@app.command()
@friendly_errors
def reproduce(
    run_id: Annotated[str, typer.Argument(help="The MLflow run to make again.")],
    tolerance: Annotated[
        float, typer.Option(help="Largest accepted difference per metric.", min=0.0)
    ] = 0.0,
) -> None:
    """Re-run a tracked run from its commit and data version; compare its test metrics."""
    from .lifecycle.reproduce import reproduce as reproduce_run

    result = reproduce_run(run_id)
    typer.echo(f"run {result.run_id}: commit {result.commit[:12]}, data {result.data_hash}")
    typer.echo(result.table())
    if not result.matches(tolerance):
        raise FlywheelError(f"metrics differ from run {run_id} by more than {tolerance}")
    typer.echo("reproduced: every metric matches" + (" exactly" if tolerance == 0 else ""))


@app.command("sync-runs")
@friendly_errors
def sync_runs() -> None:
    """Copy the runs an MLflow server outage kept in the local store (mlflow-offline.db) to the
    server of MLFLOW_TRACKING_URI, into the runs they continue."""
    from .tracking.offline import OFFLINE_DB, pending, sync
    from .tracking.runs import check_reachable, tracking_uri

    uri = tracking_uri()
    if not uri.startswith(("http://", "https://")):
        raise FlywheelError(
            "MLFLOW_TRACKING_URI names no tracking server: set it to the server the runs belong to"
        )
    if not pending():
        typer.echo(f"nothing to sync: {OFFLINE_DB} holds no run kept during an outage")
        return
    check_reachable(uri)
    synced = sync(uri)
    typer.echo(f"copied {len(synced)} run(s) to {uri}: {', '.join(synced) or '-'}")


@app.command()
@friendly_errors
def bench(
    params: ParamsOption = PARAMS_FILE,
    model_dir: ModelOption = MODEL_DIR,
    requests: Annotated[int, typer.Option(help="Requests per latency measurement.", min=5)] = 50,
    batch_size: Annotated[int, typer.Option(help="Inputs per batched request.", min=1)] = 16,
    train_steps: Annotated[int, typer.Option(help="Steps of the throughput run.", min=1)] = 20,
    load_requests: Annotated[
        int, typer.Option(help="Requests per load run (1 and 32 clients).", min=10)
    ] = 1000,
) -> None:
    """Measure latency, load, memory, model size and training throughput; write bench.json."""
    from .core.config import load_params
    from .serving.bench import bench as run_bench
    from .serving.bench import table
    from .serving.predict import Predictor

    settings = load_params(params)
    Predictor(model_dir)  # a missing model fails here, in one line, before any measuring
    results = run_bench(settings, requests, batch_size, train_steps, model_dir, load_requests)
    typer.echo(table(results))


@app.command()
@friendly_errors
def gate(params: ParamsOption = PARAMS_FILE) -> None:
    """Compare bench.json with the budgets in params.yaml; exit 1 naming any metric over budget."""
    from .core.config import load_params
    from .lifecycle.gate import gate as check_budgets

    for verdict in check_budgets(load_params(params)):
        typer.echo(str(verdict))
    typer.echo("gate passed: every measurement is within its budget")


def entry_point(args: list[str] | None = None) -> int:
    """The entry point (`python -m {{ cookiecutter.package_name }}`, the console script): a usage
    mistake (an unknown verb or option, a value of the wrong type or out of range, a missing
    argument) prints one line naming it and where the help is, like every other error."""
    try:  # typer 0.2x carries its own copy of click; older ones use click itself
        from typer._click import exceptions as usage
    except ImportError:
        from click import exceptions as usage  # type: ignore[no-redef]

    prog = "{{ cookiecutter.package_name }}"
    gc_pause.pause()  # the heavy imports come next; training and serving resume it themselves
    try:
        code = app(args=args, prog_name=prog, standalone_mode=False)
    # click before 8.2 prints the help itself when no verb is given.
    except getattr(usage, "NoArgsIsHelpError", ()) as error:
        error.show()  # no verb at all: the list of verbs is the answer
        return 0
    except usage.UsageError as error:
        command = error.ctx.command_path if error.ctx is not None else prog
        message = " ".join(error.format_message().split()).rstrip(".")
        typer.secho(f"error: {message}: see `{command} --help`", err=True, fg=typer.colors.RED)
        return 2
    except usage.ClickException as error:
        typer.secho(f"error: {error.format_message()}", err=True, fg=typer.colors.RED)
        return error.exit_code
    except typer.Abort:
        typer.secho("error: aborted", err=True, fg=typer.colors.RED)
        return 130
    finally:
        gc_pause.resume(freeze=False)  # a caller in the same process gets its collector back
    return code if isinstance(code, int) else 0
