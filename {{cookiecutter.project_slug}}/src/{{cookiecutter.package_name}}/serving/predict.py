"""`predict`: a trained model answering raw inputs, through the same preprocessing as training."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from ..core.errors import FlywheelError
from ..core.paths import MODEL_DIR, ONNX_DIR
from ..tasks import task


def require_model(model_dir: Path) -> dict[str, Any]:
    """The folder's run id and checksum, once every file is there and unaltered."""
    from ..core.checksums import verify

    if not (model_dir / "config.json").is_file():
        raise FlywheelError(f"{model_dir} holds no trained model: run `train` first")
    return verify(model_dir)


class Predictor:
    """Loads a saved model once; turns raw inputs (text, or file bytes) into predictions."""

    def __init__(
        self, model_dir: Path = MODEL_DIR, runtime: str = "torch", onnx_dir: Path = ONNX_DIR
    ) -> None:
        self.manifest = require_model(model_dir)
        self.model_dir = model_dir
        self.runtime = runtime
        self.processor, self.model = task.load(model_dir)
        self.model.eval()
        self.collate = task.collator(self.processor)
        # The model call: PyTorch, or its exported ONNX graph (`export`) with onnxruntime.
        self.call = self.model
        if runtime == "onnx":
            from .export import load

            self.call = load(model_dir, self.manifest, self.model.config, onnx_dir)

    def features(self, raw_inputs: list[Any]) -> dict[str, Any]:
        """The tensors the model sees: `task.preprocess` and the collator, as in training."""
        return self.encode([task.decode_input(raw) for raw in raw_inputs])

    def encode(self, inputs: list[Any]) -> dict[str, Any]:
        """The tensors of inputs already decoded (`task.decode_input`)."""
        encoded = task.preprocess(self.processor, inputs)
        rows = [{key: values[i] for key, values in encoded.items()} for i in range(len(inputs))]
        return self.collate(rows)

    def predict(self, raw_inputs: list[Any]) -> list[dict[str, Any]]:
        """One answer per input; an answer also names the characters its input had that the
        model skipped (`skipped_characters`), if any."""
        import torch

        inputs = [task.decode_input(raw) for raw in raw_inputs]
        skipped = [
            task.skipped_characters(self.processor, value, name=f"input {number}")
            for number, value in enumerate(inputs, start=1)
        ]
        batch = self.encode(inputs)
        with torch.inference_mode():
            outputs = task.run_model(self.call, batch)
        answers = task.postprocess(self.processor, self.model, outputs)
        for answer, characters in zip(answers, skipped, strict=True):
            if characters:
                answer["skipped_characters"] = characters
        return answers


def read_inputs(values: list[str]) -> list[Any]:
    """Command-line inputs: text as typed for text tasks, decoded files otherwise."""
    return task.INPUTS.from_command_line(values, task)


def to_model_input(raw: Any) -> str:
    """The MLflow model's input column: text as is, files as base64 (JSON-friendly)."""
    return raw if isinstance(raw, str) else base64.b64encode(raw).decode("ascii")


def from_model_input(value: str) -> Any:
    return task.INPUTS.from_model_column(value)


def mlflow_model_class() -> type:
    """The MLflow pyfunc flavour of the Predictor: `mlflow.pyfunc.load_model(uri).predict(df)`."""
    import mlflow.pyfunc
    import pandas as pd

    # MLflow resolves `predict`'s type hints in this module's namespace when the class is made
    # (a DataFrame hint: no type-hint validation, and no warning asking for one); pandas is
    # imported here rather than at the top so that `predict` and `serve` start without it.
    globals().setdefault("pd", pd)

    class FlywheelModel(mlflow.pyfunc.PythonModel):
        def load_context(self, context: Any) -> None:
            self.predictor = Predictor(Path(context.artifacts["model"]))

        def predict(
            self, context: Any, model_input: pd.DataFrame, params: Any = None
        ) -> pd.DataFrame:
            raw = [from_model_input(value) for value in model_input["input"].tolist()]
            return pd.DataFrame(self.predictor.predict(raw))

    return FlywheelModel
