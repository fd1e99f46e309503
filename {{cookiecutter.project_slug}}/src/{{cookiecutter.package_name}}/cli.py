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

from . import __version__, gc_pause, tracking
from .config import MODEL_DIR, PARAMS_FILE, PREDICTIONS_DIR
from .errors import FlywheelError
from .project import MODALITY, TASK
from .tasks import task

app = typer.Typer(
    help="{{ cookiecutter.project_slug }}: {{ cookiecutter.__modality }} {{ cookiecutter.task }}.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

INPUTS_HELP = (
    "Texts, one quoted argument each."
    if task.INPUT_KIND == "text"
    else "Paths of the files to predict."
)
ParamsOption = Annotated[Path, typer.Option("--params", help="The run's configuration.")]
ModelOption = Annotated[Path, typer.Option("--model-dir", help="A trained model folder.")]


def one_at_a_time(command: Callable[..., Any]) -> Callable[..., Any]:
    """The command holds the project's run lock: a second one stops at once (runlock.py)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from .runlock import exclusive

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
    from .baselines import shortfall

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
    from .config import load_params

    _prepare(load_params(params))


def _prepare(params: Any) -> None:
    from .data import prepare as prepare_data

    sizes = prepare_data(params)
    typer.echo("prepared " + ", ".join(f"{name}: {size}" for name, size in sizes.items()))


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
    from .config import load_params
    from .train import train as train_model

    config = load_params(params)
    if prepare_first:
        _prepare(config)
    tracking.create_store_in_background()  # while the training libraries load
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
    from .config import load_params
    from .evaluate import evaluate as evaluate_model

    metrics = evaluate_model(load_params(params), model_dir)
    typer.echo(json.dumps(metrics, indent=2))
    warn_below_baseline(metrics)


@app.command()
@friendly_errors
def predict(
    inputs: Annotated[list[str], typer.Argument(help=INPUTS_HELP)],
    model_dir: ModelOption = MODEL_DIR,
    out_dir: Annotated[
        Path,
        typer.Option(
            help="Where the synthesized speech is written.", hidden=task.TARGET != "speech"
        ),
    ] = PREDICTIONS_DIR,
) -> None:
    """Predict with the trained model; print one JSON line per input (speech: the WAV file
    written to --out-dir and its duration)."""
    from .predict import Predictor, read_inputs, write_audio

    predictions = Predictor(model_dir).predict(read_inputs(inputs))
    if task.TARGET == "speech":
        predictions = write_audio(inputs, predictions, out_dir)
    for value, prediction in zip(inputs, predictions, strict=True):
        typer.echo(json.dumps({"input": value, **prediction}))


@app.command()
@friendly_errors
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8000,
    model_dir: ModelOption = MODEL_DIR,
    params: ParamsOption = PARAMS_FILE,
) -> None:
    """Serve the trained model over HTTP (FastAPI): GET /health, POST /predict."""
    from .config import load_params
    from .serve import run

    run(host, port, model_dir, load_params(params).serve)


@app.command()
@friendly_errors
def card(
    run: Annotated[
        str | None, typer.Option(help="The MLflow run (default: the one that trained the model).")
    ] = None,
    model_dir: ModelOption = MODEL_DIR,
) -> None:
    """Write MODEL_CARD.md (Hugging Face model-card format) from a training run; log it there."""
    from .card import trained_run_id, write_card

    run_id = run or trained_run_id(model_dir)
    path = write_card(run_id)
    typer.echo(f"wrote {path} from run {run_id} (logged to the run); fill in its intended use")


@app.command()
@friendly_errors
@one_at_a_time
def export(model_dir: ModelOption = MODEL_DIR) -> None:
    """Export the trained model to ONNX (models/onnx) and compare it with PyTorch on the test
    split; `serve.runtime: onnx` in params.yaml serves it with onnxruntime."""
    from .config import ONNX_DIR
    from .data import load_prepared
    from .export import ONNX_FILE, require_exportable
    from .export import export as export_model
    from .predict import Predictor

    require_exportable()  # before loading anything
    source = export_model(Predictor(model_dir), load_prepared()["test"])
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
    from .reproduce import reproduce as reproduce_run

    result = reproduce_run(run_id)
    typer.echo(f"run {result.run_id}: commit {result.commit[:12]}, data {result.data_hash}")
    typer.echo(result.table())
    if not result.matches(tolerance):
        raise FlywheelError(f"metrics differ from run {run_id} by more than {tolerance}")
    typer.echo("reproduced: every metric matches" + (" exactly" if tolerance == 0 else ""))


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
    from .bench import bench as run_bench
    from .bench import table
    from .config import load_params
    from .predict import Predictor

    settings = load_params(params)
    Predictor(model_dir)  # a missing model fails here, in one line, before any measuring
    results = run_bench(settings, requests, batch_size, train_steps, model_dir, load_requests)
    typer.echo(table(results))


@app.command()
@friendly_errors
def gate(params: ParamsOption = PARAMS_FILE) -> None:
    """Compare bench.json with the budgets in params.yaml; exit 1 naming any metric over budget."""
    from .config import load_params
    from .gate import gate as check_budgets

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
        from click import exceptions as usage

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
