"""`export`: the trained model as an ONNX graph, or (text generation) as a half-precision
safetensors checkpoint, checked against the trained model on the test split.

`serve` and `predict` run the graph with onnxruntime when `serve.runtime` in params.yaml is
`onnx`: the processor and the post-processing stay the same Python code, only the model call
changes. The checkpoint is what vLLM serves (`serve.engine: vllm`) and llama.cpp's
convert_hf_to_gguf.py reads. Either export folder records the checksum of the model folder it came
from, so a model trained since is never answered by a stale export.
"""

from __future__ import annotations

import copy
import json
import shutil
import tempfile
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ..core.errors import FlywheelError
from ..core.paths import CHECKPOINT_DIR, ONNX_DIR
from ..core.project import TASK
from ..tasks import task

ONNX_FILE = "model.onnx"
SOURCE_FILE = "source.json"
# The graph's one output: what every exportable task's post-processing reads.
OUTPUT = "logits"
# Test inputs compared between the runtimes, in batches of this size.
PARITY_BATCH = 16


# The checkpoint's weights: what GPUs since NVIDIA's Ampere compute in, at half float32's size
# (vLLM falls back to float16 on older ones).
CHECKPOINT_DTYPE = "bfloat16"


def require_exportable() -> None:
    if task.WHY_NO_ONNX:
        raise FlywheelError(
            f"{TASK} models are not exported to ONNX: {task.WHY_NO_ONNX}; serve with "
            "`serve.runtime: torch` in params.yaml"
        )


def _logits_only(model: Any, names: list[str]) -> Any:
    """The model's call with positional tensors and one output, as the exporter traces it."""
    import torch

    class LogitsOnly(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            return self.model(**dict(zip(names, tensors, strict=True))).logits

    return LogitsOnly().eval()


def _varying_axes(shortest: dict[str, Any], longest: dict[str, Any]) -> dict[str, dict[int, str]]:
    """Axes that differ between two batches (a text's length, a clip's frames) are dynamic, and
    so is every batch axis; the rest (an image's size, the mel bands) are fixed."""
    axes = {}
    for name, tensor in shortest.items():
        other = longest[name]
        axes[name] = {0: "batch"} | {
            axis: f"{name}_{axis}"
            for axis in range(1, tensor.dim())
            if tensor.shape[axis] != other.shape[axis]
        }
    return axes


def export(predictor: Any, test: Any, out_dir: Path = ONNX_DIR) -> dict[str, Any]:
    """Writes `model.onnx` and `source.json` into `out_dir`; returns what `source.json` holds:
    the source model's run and checksum, and the largest difference from PyTorch on the test
    split."""
    import torch

    require_exportable()
    raws = [task.example_input(test.select([i])) for i in range(len(test))]
    sizes = [len(raw) for raw in raws]  # characters or bytes
    shortest = predictor.features([raws[sizes.index(min(sizes))]])
    longest = predictor.features([raws[sizes.index(max(sizes))]] * 2)
    names = [name for name, value in longest.items() if isinstance(value, torch.Tensor)]
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / ONNX_FILE
    # The tracer warns about Python values it records as constants (shape checks that hold for
    # every input of this model); the parity check below is the proof that counts.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _logits_only(predictor.model, names),
            tuple(longest[name] for name in names),
            str(path),
            input_names=names,
            output_names=[OUTPUT],
            dynamic_axes=_varying_axes(
                {n: shortest[n] for n in names}, {n: longest[n] for n in names}
            ),
            # The TorchScript exporter: it traces the call as made, where the newer one
            # (dynamo) would need each input's dynamic dimensions declared up front.
            dynamo=False,
        )
    session = OnnxModel(path, predictor.model.config)
    source = _source(predictor, parity(predictor, session, raws), len(raws))
    (out_dir / SOURCE_FILE).write_text(json.dumps(source, indent=2) + "\n", encoding="utf-8")
    return source


def _source(predictor: Any, compared: dict[str, float], inputs: int) -> dict[str, Any]:
    return {
        "run_id": predictor.manifest["run_id"],
        "checksum": predictor.manifest["checksum"],
        **compared,
        "test_inputs": inputs,
    }


def export_checkpoint(
    predictor: Any, test: Any, out_dir: Path = CHECKPOINT_DIR, dtype: str = CHECKPOINT_DTYPE
) -> dict[str, Any]:
    """Writes the trained model (a LoRA adapter is already merged into it by `train`) with its
    tokenizer, chat template and generation settings into `out_dir`, its weights as `dtype`
    safetensors; then loads it back and runs it on every test prompt beside the trained model.
    Returns what `source.json` holds: the source model, the largest difference of the logits and
    the share of positions where both pick the same next token."""
    import torch
    from transformers import AutoModelForCausalLM

    raws = [task.example_input(test.select([i])) for i in range(len(test))]
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        copy.deepcopy(predictor.model).to(getattr(torch, dtype)).save_pretrained(staging)
        predictor.processor.save_pretrained(staging)
        exported = AutoModelForCausalLM.from_pretrained(staging, dtype=dtype).eval()
        source = _source(predictor, parity(predictor, exported, raws), len(raws))
        source["dtype"] = dtype
        (staging / SOURCE_FILE).write_text(json.dumps(source, indent=2) + "\n", encoding="utf-8")
        shutil.rmtree(out_dir, ignore_errors=True)
        staging.rename(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return source


def parity(predictor: Any, exported: Any, raws: list[Any]) -> dict[str, float]:
    """The largest absolute difference between the trained model's outputs and the exported
    one's (onnxruntime's, or the checkpoint's in its own precision), and the share of positions
    where both rank the same class or token first."""
    import torch

    largest, same, positions = 0.0, 0, 0
    for start in range(0, len(raws), PARITY_BATCH):
        batch = predictor.features(raws[start : start + PARITY_BATCH])
        with torch.inference_mode():
            expected = predictor.model(**batch).logits.float()
            got = exported(**batch).logits.float()
        largest = max(largest, float((expected - got).abs().max()))
        picked, also = expected.argmax(-1), got.argmax(-1)
        mask = batch.get("attention_mask")
        # A sequence's padding is not a position of the prompt.
        kept = mask.bool() if mask is not None and mask.shape == picked.shape else None
        same += int(((picked == also) & kept).sum() if kept is not None else (picked == also).sum())
        positions += int(kept.sum()) if kept is not None else picked.numel()
    return {"max_abs_difference": largest, "same_top_prediction": same / max(positions, 1)}


class OnnxModel:
    """An exported graph behind the PyTorch model's call: `model(**batch).logits`."""

    def __init__(self, path: Path, config: Any) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only: its warnings are about graph fusions
        self.session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        self.inputs = [node.name for node in self.session.get_inputs()]
        # Post-processing reads the labels and sizes from the model's config.
        self.config = config

    def __call__(self, **batch: Any) -> SimpleNamespace:
        import torch

        feeds = {name: batch[name].numpy() for name in self.inputs}
        [logits] = self.session.run([OUTPUT], feeds)
        return SimpleNamespace(logits=torch.from_numpy(logits))

    def eval(self) -> OnnxModel:
        return self


def load(
    model_dir: Path, manifest: dict[str, Any], config: Any, out_dir: Path = ONNX_DIR
) -> OnnxModel:
    """The exported graph of the model in `model_dir` (its manifest and config); refused in one
    line when missing or exported from another model."""
    require_exportable()
    require_current(out_dir, ONNX_FILE, model_dir, manifest)
    return OnnxModel(out_dir / ONNX_FILE, config)


def require_current(out_dir: Path, exported: str, model_dir: Path, manifest: dict) -> None:
    """Refuses, in one line, an export folder without `exported` or made from another model."""
    source_file = out_dir / SOURCE_FILE
    if not (out_dir / exported).exists() or not source_file.is_file():
        raise FlywheelError(f"{out_dir} holds no exported model: run `export` first")
    source = json.loads(source_file.read_text(encoding="utf-8"))
    if source.get("checksum") != manifest["checksum"]:
        raise FlywheelError(
            f"{out_dir} was exported from another model than {model_dir}: run `export` again"
        )
