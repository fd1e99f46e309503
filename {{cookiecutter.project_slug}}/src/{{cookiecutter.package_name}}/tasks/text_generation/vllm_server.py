"""`serve` with `serve.engine: vllm`: vLLM's own OpenAI server on the checkpoint `export` wrote.

vLLM answers the same routes as this project's server (`/v1/chat/completions`, `/v1/completions`,
`/v1/models`, `/health`) under the same model name, so clients do not change; it batches many
generations on a GPU where this project's server runs one at a time. vLLM is not one of the
project's dependencies: it pins its own PyTorch build and needs CUDA, so it runs from its own
image (the Dockerfile's `vllm` target) or its own environment (`uv tool install vllm`).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ...core.checksums import verify
from ...core.errors import FlywheelError
from ...core.paths import CHECKPOINT_DIR, MODEL_DIR
from ...core.project import SLUG
from ...serving.export import require_current


def vllm_command(host: str, port: int, checkpoint: Path = CHECKPOINT_DIR) -> list[str]:
    """`vllm serve` on the exported checkpoint: its chat template, its generation settings (the
    greedy default and `model.max_new_tokens` as the cap on every request's tokens) and the
    model name this project's server answers to (the project's slug)."""
    return [
        "vllm",
        "serve",
        str(checkpoint),
        "--served-model-name",
        SLUG,
        "--generation-config",
        "auto",
        "--host",
        host,
        "--port",
        str(port),
    ]


def run(host: str, port: int, model: str) -> None:
    """Replaces this process with vLLM's server, once the export is known to be current."""
    if Path(model) != MODEL_DIR:
        raise FlywheelError(
            f"--model {model}: serve.engine: vllm serves the export of {MODEL_DIR} (`export`); "
            "--model is for serve.engine: torch"
        )
    manifest = verify(MODEL_DIR)
    require_current(CHECKPOINT_DIR, "config.json", MODEL_DIR, manifest)
    executable = shutil.which("vllm")
    if executable is None:
        raise FlywheelError(
            "serve.engine: vllm needs vLLM's `vllm` command on the PATH (a CUDA machine: "
            "`uv tool install vllm`, or the image `docker build --target vllm`); or set "
            "serve.engine: torch"
        )
    source = json.loads((CHECKPOINT_DIR / "source.json").read_text(encoding="utf-8"))
    print(f"vLLM serves {CHECKPOINT_DIR} (run {source['run_id']}) as {SLUG}", flush=True)
    command = vllm_command(host, port)
    os.execv(executable, command)
