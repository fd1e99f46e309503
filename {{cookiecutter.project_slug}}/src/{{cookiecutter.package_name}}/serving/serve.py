"""`serve`: HTTP inference with FastAPI: `GET /health`, `POST /predict` and Prometheus's
`GET /metrics` (and the task's own endpoints: text generation adds OpenAI's API under /v1,
openai_api.py).

Requests go through `Predictor`, i.e. the same preprocessing as training. Concurrent requests are
batched into one model call (batching.py; sizes in the `serve` section of params.yaml); a full
queue answers 503 with `Retry-After`. Bad payloads get a 4xx with a message naming the problem,
never a 500.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from .. import __version__
from ..core import gc_pause
from ..core.config import MonitorParams, ServeParams, load_params
from ..core.paths import MODEL_DIR
from ..tasks import task
from .batching import Batcher, Overloaded
from .predict import Predictor


class ErrorAnswer(BaseModel):
    """Every 4xx/5xx body: what is wrong and how to fix it (FastAPI's own validation errors
    list the fields instead)."""

    detail: str | list[dict[str, Any]]


# The answers besides 200, documented in the OpenAPI schema that clients (and the fuzz test) read.
ERROR_ANSWERS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorAnswer, "description": "The body cannot be parsed (not JSON, not a form)."},
    422: {
        "model": ErrorAnswer,
        "description": "The input is missing, malformed, unreadable or breaks a rule the schema "
        "states (blank or too long text, no character the model can read).",
    },
    503: {"model": ErrorAnswer, "description": "The queue is full: retry after Retry-After s."},
}


def create_app(
    model_dir: Path = MODEL_DIR,
    predictor: Predictor | None = None,
    serving: ServeParams | None = None,
    source: str | None = None,
    monitoring: MonitorParams | None = None,
) -> FastAPI:
    """The app; it loads the model at start-up unless given one already loaded, and batches with
    `serving` (default: the `serve` section of params.yaml). `source` is what /health calls the
    model (default: its folder), e.g. the registry URI it was downloaded from. With `monitoring`
    (the `serve` verb passes params.yaml's), answered requests are recorded for `monitor`."""
    state: dict[str, Any] = {}
    serving = serving if serving is not None else load_params().serve

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state["predictor"] = (
            predictor if predictor is not None else Predictor(model_dir, serving.runtime)
        )
        gc_pause.resume()  # a long-running server collects as usual once the model is loaded
        state["batcher"] = Batcher(
            state["predictor"].predict,
            serving.max_batch_size,
            serving.max_wait_ms,
            serving.max_queue,
        )
        await state["batcher"].start()
        app.state.batcher = state["batcher"]
        if monitoring is not None and monitoring.record:
            from ..lifecycle.monitor import Recorder

            state["recorder"] = Recorder(state["predictor"].processor, monitoring)
        yield
        await state["batcher"].stop()
        if "recorder" in state:
            state["recorder"].close()
        state.clear()

    async def batched(
        inputs: list[Any], sent: list[Any] | None = None
    ) -> dict[str, list[dict[str, Any]]]:
        try:
            predictions = await state["batcher"].predict(inputs)
        except Overloaded:
            raise HTTPException(
                503, "the server is at capacity: retry shortly", headers={"Retry-After": "1"}
            ) from None
        if "recorder" in state:
            # Queued: written on its own thread.
            state["recorder"].record(inputs, predictions, sent)
        return {"predictions": predictions}

    app = FastAPI(title="{{ cookiecutter.project_slug }}", version=__version__, lifespan=lifespan)
    # Prometheus's view (requests, latency and sizes by endpoint and status class, the process's
    # memory and CPU) at /metrics, outside the OpenAPI schema: what dashboards, alerts and a
    # canary's analysis read. A registry per app: on the process-wide one, a second app (tests,
    # bench) would find the metrics' names taken and count nothing.
    import prometheus_client
    from prometheus_fastapi_instrumentator import Instrumentator

    registry = prometheus_client.CollectorRegistry()
    prometheus_client.ProcessCollector(registry=registry)
    instrumentator = Instrumentator(excluded_handlers=["/metrics"], registry=registry)
    instrumentator.instrument(app).expose(app, include_in_schema=False)
    router = task.api_router(state)  # the task's own endpoints (text generation: OpenAI's API)
    if router is not None:
        app.include_router(router)

    @app.get("/health")
    def health() -> dict[str, Any]:
        manifest = state["predictor"].manifest
        recorder = state.get("recorder")
        return {
            "status": "ok",
            "task": "{{ cookiecutter.task }}",
            "model": source or str(model_dir),
            # Which trained model answers: its MLflow run and the checksum of its files.
            "run_id": manifest["run_id"],
            "checksum": manifest["checksum"],
            # What runs the model: torch, or onnx (the exported graph, onnxruntime).
            "runtime": state["predictor"].runtime,
            # Requests recorded for `monitor` (and dropped when the recorder fell behind).
            "monitoring": {"recorded": recorder.written, "dropped": recorder.dropped}
            if recorder is not None
            else None,
        }

    # /predict as the task's inputs arrive: JSON texts, or an uploaded file (inputs.py).
    answers = ERROR_ANSWERS | {
        code: {"model": ErrorAnswer, "description": description}
        for code, description in task.INPUTS.extra_answers.items()
    }
    task.INPUTS.add_predict_endpoint(app, task, state, batched, answers)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = published_schema(app, state["predictor"].processor)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def published_schema(app: FastAPI, processor: Any) -> dict[str, Any]:
    """FastAPI's OpenAPI schema with the rules of /predict's input it cannot see (they depend on
    the task and its model: a text's length and characters, a file's media types)."""
    from fastapi.openapi.utils import get_openapi

    schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
    rules = task.input_schema(processor)
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]
    content = next(iter(body.values()))
    fields = schema["components"]["schemas"][content["schema"]["$ref"].rsplit("/", 1)[-1]]
    task.INPUTS.publish_rules(content, fields, rules)
    return schema


def run(host: str, port: int, model: str, serving: ServeParams, monitoring: MonitorParams) -> None:
    """Serve `model`: a local folder, or an MLflow model URI (registry.py)."""
    import uvicorn

    from ..lifecycle.registry import model_folder

    with model_folder(model) as model_dir:
        # Loaded (and its files checked) before the server starts: a problem is one line, not a
        # traceback from the server's start-up.
        predictor = Predictor(model_dir, serving.runtime)
        app = create_app(model_dir, predictor, serving, source=model, monitoring=monitoring)
        uvicorn.run(app, host=host, port=port)
