"""`bench`: what production will feel, measured on this machine; written to bench.json.

Inference latency (p50/p95 over many requests, one input and a batch) through `Predictor` and
through the HTTP server, the server under load (1 and 32 concurrent clients on 127.0.0.1: requests
per second, p50/p95/p99, errors), each with PyTorch and, where the task exports, with the ONNX
graph in onnxruntime; peak memory, model size on disk, and training throughput. A measurement,
never a test: `gate` compares the PyTorch numbers with the budgets in params.yaml.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import json
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..core.config import LOAD_CONCURRENCY, Params, ServeParams
from ..core.paths import BENCH_FILE, MODEL_DIR
from ..data.prepare import build_model, encode, load_prepared
from ..tasks import task

# Requests per client sent, unmeasured, before each load run.
WARM_UP_ROUNDS = 4


def percentiles(samples: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {
        "p50": round(cuts[49], 3),
        "p95": round(cuts[94], 3),
        "p99": round(cuts[98], 3),
        "n": len(samples),
    }


def _timed(call: Callable[[], Any], repeats: int) -> list[float]:
    call()  # warm-up: first-call allocations and lazy imports are not latency
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _http_body(example: Any) -> tuple[bytes, str]:
    """The request body `serve` takes for one input, and its content type."""
    return task.INPUTS.http_body(example)


def http_request(url: str, example: Any) -> urllib.request.Request:
    """A POST of one raw input to /predict, as a client sends it (JSON text, or a file upload)."""
    body, content_type = _http_body(example)
    return urllib.request.Request(url, body, {"Content-Type": content_type})


@contextlib.contextmanager
def running_server(
    model_dir: Path, serving: ServeParams, predictor: Any | None = None, monitoring: Any = None
) -> Iterator[str]:
    """A real server on a free 127.0.0.1 port for the duration (answering with `predictor`
    where given, recording its traffic with `monitoring` settings where given); yields its
    /predict URL."""
    import uvicorn

    from .serve import create_app

    port = _free_port()
    app = create_app(model_dir, predictor, serving=serving, monitoring=monitoring)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the benchmark's HTTP server did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/predict"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _round_trip(url: str, example: Any) -> None:
    with urllib.request.urlopen(http_request(url, example), timeout=60) as response:
        response.read()


def _load_client(
    url: str,
    body: bytes,
    content_type: str,
    requests: int,
    clients: int,
    time_limit_s: float,
    stream: bool = False,
) -> dict[str, Any]:
    """loadgen.py's answer: the clients' results and the run's seconds."""
    spec = {
        "url": url,
        "body": base64.b64encode(body).decode(),
        "content_type": content_type,
        "requests": requests,
        "clients": clients,
        "time_limit_s": time_limit_s,
        "stream": stream,
    }
    client = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("loadgen.py"))],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        check=True,
        timeout=time_limit_s + 120,
    )
    return json.loads(client.stdout)


def http_load(
    url: str, example: Any, requests: int, concurrency: int, time_limit_s: float
) -> dict[str, float | int]:
    """`requests` round trips from `concurrency` clients at once (fewer if `time_limit_s` runs
    out): requests per second, latency percentiles, errors (any failed or non-200 answer).

    The clients run in a process of their own (loadgen.py), as real clients do: client threads
    in the server's process would share its interpreter lock and measure the two together."""
    body, content_type = _http_body(example)
    result = _load_client(url, body, content_type, requests, concurrency, time_limit_s)
    done = result["latencies_ms"]
    latencies = [value for value in done if value is not None]  # None marks an error
    if len(latencies) < 2:
        raise RuntimeError(f"the load run got {len(latencies)} answers from {len(done)} requests")
    return {
        "concurrency": concurrency,
        # Answered requests only: fast refusals must not look like throughput.
        "requests_per_second": round(len(latencies) / result["seconds"], 1),
        **percentiles(latencies),
        "errors": len(done) - len(latencies),
    }


def generation_load(
    server: str, model: str, prompt: str, requests: int, clients: int, time_limit_s: float
) -> dict[str, Any]:
    """Streamed chat completions from the OpenAI API (`clients` at once, from loadgen.py's
    process): generated tokens per second over the run, time to first token and latency
    percentiles."""
    from ..tasks.text_generation.task import conversation

    body = {
        "model": model,
        "messages": conversation(prompt),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    url = f"{server}/v1/chat/completions"
    result = _load_client(
        url, json.dumps(body).encode(), "application/json", requests, clients, time_limit_s, True
    )
    answers = [answer for answer in result["latencies_ms"] if answer is not None]
    if len(answers) < 2:
        raise RuntimeError(f"the generation run got {len(answers)} answers")
    return {
        "concurrency": clients,
        "tokens_per_second": round(sum(a["tokens"] for a in answers) / result["seconds"], 1),
        "requests_per_second": round(len(answers) / result["seconds"], 2),
        "ttft_ms": percentiles([answer["ttft_ms"] for answer in answers]),
        "latency_ms": percentiles([answer["latency_ms"] for answer in answers]),
        "errors": len(result["latencies_ms"]) - len(answers),
    }


# Concurrent clients of the generation runs (text generation, through the OpenAI API).
GENERATION_CLIENTS = (1, 8)


def generation_measurements(predictor: Any, serving: ServeParams, prompt: Any) -> dict[str, Any]:
    """Where the project serves the OpenAI API: `generation_load` at 1 and 8 clients."""
    from ..tasks.text_generation.openai_api import MODEL_NAME

    with running_server(predictor.model_dir, serving, predictor) as url:
        server, runs = url.removesuffix("/predict"), {}
        for clients in GENERATION_CLIENTS:
            generation_load(server, MODEL_NAME, prompt, 2 * clients, clients, 30)  # warm-up
            runs[str(clients)] = generation_load(
                server, MODEL_NAME, prompt, 16 * clients, clients, 60
            )
    return runs


def runtime_measurements(
    predictor: Any,
    serving: ServeParams,
    example: Any,
    requests: int,
    batch_size: int,
    load_requests: int,
) -> dict[str, Any]:
    """One runtime's latency through `Predictor` and HTTP, and its load runs at 1 and
    LOAD_CONCURRENCY clients."""
    batch = [example] * batch_size
    with running_server(predictor.model_dir, serving, predictor) as url:
        http_single = _timed(lambda: _round_trip(url, example), requests)
        load = {}
        for clients in (1, LOAD_CONCURRENCY):
            # Unmeasured rounds first: connections, the batcher and the allocator warm up.
            http_load(url, example, WARM_UP_ROUNDS * clients, clients, time_limit_s=30)
            load[str(clients)] = http_load(url, example, load_requests, clients, time_limit_s=30)
    return {
        "predict_latency_ms": {
            "single": percentiles(_timed(lambda: predictor.predict([example]), requests)),
            "batched": {
                **percentiles(_timed(lambda: predictor.predict(batch), requests)),
                "batch_size": batch_size,
            },
        },
        "http_latency_ms": {"single": percentiles(http_single)},
        "http_load": load,
    }


def onnx_measurements(predictor: Any, measure: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    """The same measurements with the PyTorch `predictor`'s model exported to ONNX (in a scratch
    folder) and run by onnxruntime, or why the task has no export."""
    from .export import export
    from .predict import Predictor

    if task.WHY_NO_ONNX:
        return {"unavailable": task.WHY_NO_ONNX}
    with tempfile.TemporaryDirectory() as scratch:
        source = export(predictor, load_prepared(names=("test",))["test"], Path(scratch))
        onnx = Predictor(predictor.model_dir, "onnx", onnx_dir=Path(scratch))
        return {"max_abs_difference": source["max_abs_difference"], **measure(onnx)}


def train_throughput(params: Params, steps: int) -> float:
    """Samples per second of a short training run with the project's own model and data."""
    from transformers import PrinterCallback, Trainer, set_seed
    from transformers.utils import logging as transformers_logging

    from ..training.device import trainer_arguments

    transformers_logging.disable_progress_bar()
    set_seed(params.seed)
    train = load_prepared(names=("train",))["train"]
    processor, model = build_model(params, train)
    with tempfile.TemporaryDirectory() as scratch:
        args = trainer_arguments(
            params.train, scratch, max_steps=steps, save_strategy="no", disable_tqdm=True
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=encode(train, processor),
            data_collator=task.collator(processor),
        )
        trainer.remove_callback(PrinterCallback)  # the table reports the throughput, once
        return round(trainer.train().metrics["train_samples_per_second"], 2)


def model_size_mb(model_dir: Path) -> float:
    size = sum(path.stat().st_size for path in model_dir.rglob("*") if path.is_file())
    return round(size / 2**20, 3)


def bench(
    params: Params,
    requests: int,
    batch_size: int,
    train_steps: int,
    model_dir: Path = MODEL_DIR,
    load_requests: int = 1000,
) -> dict[str, Any]:
    import torch

    from .predict import Predictor

    example = task.example_input(load_prepared(names=("test",))["test"])
    with_torch = Predictor(model_dir)

    def measure(predictor: Any) -> dict[str, Any]:
        return runtime_measurements(
            predictor, params.serve, example, requests, batch_size, load_requests
        )

    results = {
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        # PyTorch, the runtime `serve` uses by default (`serve.runtime` in params.yaml).
        **measure(with_torch),
        "onnx": onnx_measurements(with_torch, measure),
        "generation": generation_measurements(with_torch, params.serve, example)
        if importlib.util.find_spec(f"{__package__.rpartition('.')[0]}.tasks.text_generation")
        else None,
        "model_size_mb": model_size_mb(model_dir),
        "train_samples_per_second": train_throughput(params, train_steps),
    }
    # ru_maxrss is in KiB on Linux: the most this process held, model and server included.
    results["peak_memory_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    BENCH_FILE.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return results


def table(results: dict[str, Any]) -> str:
    """Each measurement of the PyTorch runtime, beside onnxruntime's where the task exports."""

    def spread(latency: dict[str, float]) -> str:
        return f"{latency['p50']} / {latency['p95']} ms"

    def runtime_rows(measured: dict[str, Any]) -> list[tuple[str, str]]:
        predict, http = measured["predict_latency_ms"], measured["http_latency_ms"]
        return [
            ("predict, 1 input: p50 / p95", spread(predict["single"])),
            (
                f"predict, batch of {predict['batched']['batch_size']}: p50 / p95",
                spread(predict["batched"]),
            ),
            ("HTTP, 1 input: p50 / p95", spread(http["single"])),
            *(
                (
                    f"HTTP load, {run['concurrency']} client(s): requests/s, p99",
                    f"{run['requests_per_second']}/s, {run['p99']} ms, {run['errors']} errors",
                )
                for run in measured["http_load"].values()
            ),
        ]

    onnx = results["onnx"]
    torch_rows = runtime_rows(results)
    onnx_values = (
        [value for _, value in runtime_rows(onnx)]
        if "unavailable" not in onnx
        else ["-"] * len(torch_rows)
    )
    rows = [
        ("", "torch", "onnxruntime"),
        *(
            (name, value, other)
            for (name, value), other in zip(torch_rows, onnx_values, strict=True)
        ),
        *(
            (
                f"generation, {run['concurrency']} client(s): tokens/s, TTFT p50 / p95",
                f"{run['tokens_per_second']}/s, {run['ttft_ms']['p50']} / "
                f"{run['ttft_ms']['p95']} ms",
                "",
            )
            for run in (results.get("generation") or {}).values()
        ),
        ("peak memory", f"{results['peak_memory_mb']} MB", ""),
        ("model size on disk", f"{results['model_size_mb']} MB", ""),
        ("training throughput", f"{results['train_samples_per_second']} samples/s", ""),
    ]
    name_width = max(len(row[0]) for row in rows)
    value_width = max(len(row[1]) for row in rows)
    lines = [f"{a:<{name_width}}  {b:<{value_width}}  {c}".rstrip() for a, b, c in rows]
    if "unavailable" in onnx:
        lines.append(f"onnxruntime: not measured: {onnx['unavailable']}")
    else:
        lines.append(f"onnxruntime: largest difference from torch {onnx['max_abs_difference']:.2e}")
    return "\n".join(lines)
