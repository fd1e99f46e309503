"""`bench`: what production will feel, measured on this machine; written to bench.json.

Inference latency (p50/p95 over many requests, one input and a batch) through `Predictor` and
through the HTTP server, peak memory, model size on disk, and training throughput. A measurement,
never a test: `gate` compares it with the budgets in params.yaml.
"""

from __future__ import annotations

import json
import resource
import socket
import statistics
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .config import BENCH_FILE, MODEL_DIR, Params
from .data import build_model, encode, load_prepared
from .tasks import task


def percentiles(samples: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50": round(cuts[49], 3), "p95": round(cuts[94], 3), "n": len(samples)}


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


def _http_request(url: str, example: Any) -> urllib.request.Request:
    if task.INPUT_KIND == "text":
        body = json.dumps({"texts": [example]}).encode()
        return urllib.request.Request(url, body, {"Content-Type": "application/json"})
    boundary = "flywheel-bench"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        'filename="example"\r\nContent-Type: application/octet-stream\r\n\r\n'
    )
    body = head.encode() + example + f"\r\n--{boundary}--\r\n".encode()
    return urllib.request.Request(
        url, body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )


def http_latency(model_dir: Path, example: Any, repeats: int) -> list[float]:
    """Round trips to a real server on a free 127.0.0.1 port, one input per request."""
    import uvicorn

    from .serve import create_app

    port = _free_port()
    config = uvicorn.Config(create_app(model_dir), host="127.0.0.1", port=port, log_level="error")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the benchmark's HTTP server did not start")
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}/predict"

        def round_trip() -> None:
            with urllib.request.urlopen(_http_request(url, example), timeout=60) as response:
                response.read()

        return _timed(round_trip, repeats)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def train_throughput(params: Params, steps: int) -> float:
    """Samples per second of a short training run with the project's own model and data."""
    from transformers import PrinterCallback, Trainer, set_seed
    from transformers.utils import logging as transformers_logging

    from .device import trainer_arguments

    transformers_logging.disable_progress_bar()
    set_seed(params.seed)
    train = load_prepared()["train"]
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
    params: Params, requests: int, batch_size: int, train_steps: int, model_dir: Path = MODEL_DIR
) -> dict[str, Any]:
    import torch

    from .predict import Predictor

    predictor = Predictor(model_dir)
    example = task.example_input(load_prepared()["test"])
    batch = [example] * batch_size
    results = {
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "predict_latency_ms": {
            "single": percentiles(_timed(lambda: predictor.predict([example]), requests)),
            "batched": {
                **percentiles(_timed(lambda: predictor.predict(batch), requests)),
                "batch_size": batch_size,
            },
        },
        "http_latency_ms": {"single": percentiles(http_latency(model_dir, example, requests))},
        "model_size_mb": model_size_mb(model_dir),
        "train_samples_per_second": train_throughput(params, train_steps),
    }
    # ru_maxrss is in KiB on Linux: the most this process held, model and server included.
    results["peak_memory_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    BENCH_FILE.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return results


def table(results: dict[str, Any]) -> str:
    def spread(latency: dict[str, float]) -> str:
        return f"{latency['p50']} / {latency['p95']} ms"

    predict, http = results["predict_latency_ms"], results["http_latency_ms"]
    rows = [
        ("predict, 1 input: p50 / p95", spread(predict["single"])),
        (
            f"predict, batch of {predict['batched']['batch_size']}: p50 / p95",
            spread(predict["batched"]),
        ),
        ("HTTP, 1 input: p50 / p95", spread(http["single"])),
        ("peak memory", f"{results['peak_memory_mb']} MB"),
        ("model size on disk", f"{results['model_size_mb']} MB"),
        ("training throughput", f"{results['train_samples_per_second']} samples/s"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)
