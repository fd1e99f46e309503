"""What every task module offers: the one list of names the shared code may call.

The shared data, training, evaluation, serving and benchmarking code reads a task only through
these names (`from .tasks import task`), so adding a task means writing one module that satisfies
this contract. mypy holds the project's task module to it (`tasks/__init__.py` types `task` as
`Task`: the facts are read-only properties, which module constants satisfy), and
tests/test_task_contract.py checks it at run time, names and parameters both.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from ..core.schema import Judging, Section
from ..serving.inputs import MAX_TEXT_CHARS, Files, Texts


@runtime_checkable
class Task(Protocol):
    # What a request or a `predict` argument carries: text, or the bytes of an image/audio file.
    @property
    def INPUT_KIND(self) -> Literal["text", "image", "audio"]: ...
    # How inputs reach the model (inputs.py): text, or a file of INPUT_KIND.
    @property
    def INPUTS(self) -> Texts | Files: ...
    # What a request must carry, as error messages name it ("a WAV, FLAC or OGG audio file").
    @property
    def ACCEPTED_INPUT(self) -> str: ...
    # What the model predicts: a class from a fixed set, free text, or speech (a waveform).
    @property
    def TARGET(self) -> Literal["class", "transcript", "speech"]: ...
    # Why `export` cannot write the model as ONNX (said in the error), or None where it can.
    @property
    def WHY_NO_ONNX(self) -> str | None: ...
    # What `export` writes: the ONNX graph `serve.runtime: onnx` runs, a half-precision
    # safetensors checkpoint that vLLM (`serve.engine: vllm`) and llama.cpp load, or nothing.
    @property
    def EXPORT_FORMAT(self) -> Literal["onnx", "safetensors"] | None: ...
    # The files `report` writes into the evaluation plots folder, beside the baselines.
    @property
    def REPORT_FILES(self) -> tuple[str, ...]: ...
    # Packages the task's code needs beyond the shared stack (pyproject.toml lists them too); a
    # logged model pins them to this run's versions.
    @property
    def REQUIREMENTS(self) -> tuple[str, ...]: ...
    # The primary metric and its direction, the baselines, what to try when behind them.
    @property
    def JUDGING(self) -> Judging: ...
    # The task's own sections of params.yaml (the shared ones live in config.py).
    @property
    def DataParams(self) -> type[Section]: ...
    @property
    def ModelParams(self) -> type[Section]: ...
    # What evaluation keeps of each batch's logits (text generation: the predicted token ids, not
    # a vocabulary-wide row per token); None keeps them whole.
    @property
    def reduce_logits(self) -> Callable[[Any, Any], Any] | None: ...

    # Data: the offline default, a local source in the documented layout, example files.
    def embedded_dataset(self, params: Any) -> Any: ...
    def load_source(self, source: Path, params: Any) -> Any: ...
    def from_hub(self, dataset: Any, params: Any) -> Any: ...
    def write_examples(self, dataset: Any, out_dir: Path) -> list[Path]: ...

    # Model: built from params (a small config, or `model.pretrained`) or loaded from a folder.
    def build(self, params: Any, train: Any, labels: list[str]) -> tuple[Any, Any]: ...
    def load(self, model_dir: Path) -> tuple[Any, Any]: ...

    # Training: encoding, optional augmentation of the training split, batching, metrics.
    def preprocess(self, processor: Any, inputs: list[Any]) -> dict[str, Any]: ...
    def training_features(self, processor: Any) -> Callable[[dict[str, Any]], dict[str, Any]]: ...
    # A function altering a batch of raw training inputs, or (marked with `alters_batches`) a
    # collated training batch of tensors; None: no augmentation. Its random draws come from its
    # `generator` attribute (numpy or torch), which checkpoints save so a resumed run is exact.
    def augmentation(self, params: Any) -> Callable[[Any], Any] | None: ...
    def collator(self, processor: Any) -> Callable[[list[dict[str, Any]]], Any]: ...
    def compute_metrics(self, processor: Any) -> Callable[[Any], dict[str, float]]: ...

    # Judging and serving: test-split report, baselines, outputs people read, raw inputs.
    def report(
        self, processor: Any, model: Any, prediction: Any, test: Any, plots_dir: Path
    ) -> dict[str, float]: ...
    def baselines(self, train: Any, test: Any, params: Any) -> dict[str, dict[str, float]]: ...
    def postprocess(self, processor: Any, model: Any, outputs: Any) -> list[dict[str, Any]]: ...
    # The model's work on a collated batch, whose result `postprocess` reads: one call of the
    # model (PyTorch or ONNX) for most tasks, a generation loop for text generation.
    def run_model(self, call: Any, batch: dict[str, Any]) -> Any: ...
    # Endpoints the task serves beside /health and /predict (text generation: the OpenAI API),
    # reading the loaded model from the server's `state`; None: no more.
    def api_router(self, state: dict[str, Any]) -> Any: ...
    def decode_input(self, raw: Any, name: str = "input") -> Any: ...
    # The characters of a decoded input the model has nothing for and skips ("" where none;
    # text to speech: those outside its training transcripts); FlywheelError naming `name`
    # when nothing would be left.
    def skipped_characters(self, processor: Any, value: Any, name: str = "input") -> str: ...
    # The JSON Schema of one input as /predict's OpenAPI schema states it, so a client generated
    # from the schema (and Schemathesis) sends only what the server accepts: a text's length and
    # the characters it needs; a file's media types (`contentMediaType`, comma-separated, which
    # the schema states as the upload's encoding).
    def input_schema(self, processor: Any) -> dict[str, Any]: ...
    # Drift monitoring (monitor.py): the summary features of a decoded input, made with the
    # model's processor (a text's vocabulary); what a prediction says, reduced to a label or a
    # length; and the same of a split's true answers, in place of predictions.
    def input_features(self, processor: Any) -> Callable[[Any], dict[str, float]]: ...
    def output_features(self, prediction: dict[str, Any]) -> dict[str, Any]: ...
    def target_features(self, split: Any) -> Callable[[Any], dict[str, Any]]: ...
    def example_input(self, dataset: Any) -> Any: ...
    # Shadow replay (shadow.py): how far a candidate's answer agrees with the champion's to the
    # same input, from 0 to 1 (1: the same answer), as params.yaml's shadow section describes.
    def agreement(self, champion: dict[str, Any], candidate: dict[str, Any]) -> float: ...

    # What `predict` prints for its inputs: the predictions as they are, or (text to speech)
    # each written to a file in `out_dir`, whose help text PREDICTIONS_OUT is (None: no files).
    @property
    def PREDICTIONS_OUT(self) -> str | None: ...

    def write_predictions(
        self, values: list[str], predictions: list[dict[str, Any]], out_dir: Path
    ) -> list[dict[str, Any]]: ...
    # The split's labels made ready to split (class names encoded as ids), and the column the
    # splits keep in proportion (classifiers: "label"; None: drawn at random).
    def prepare_labels(self, dataset: Any) -> tuple[Any, str | None]: ...


def text_schema(max_chars: int = MAX_TEXT_CHARS, needs: str = r"\S") -> dict[str, Any]:
    """One text: 1 to `max_chars` characters, with one matching `needs` (a regular expression;
    by default one that is not blank)."""
    return {"type": "string", "minLength": 1, "maxLength": max_chars, "pattern": needs}


def any_text(processor: Any) -> dict[str, Any]:
    """`input_schema` of the tasks that read any non-blank text."""
    return text_schema()


def files_of(*media_types: str) -> Callable[[Any], dict[str, Any]]:
    """`input_schema` of a task that reads uploaded files of these media types."""

    def input_schema(processor: Any) -> dict[str, Any]:
        return {"type": "string", "format": "binary", "contentMediaType": ", ".join(media_types)}

    return input_schema


def alters_batches(augment: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Marks an augmentation that alters collated training batches (a dict of tensors) instead of
    raw inputs: the training split is then encoded once, like the others, and each batch is
    altered in a few tensor operations instead of an image library call per input."""
    augment.alters_batches = True  # type: ignore[attr-defined]
    return augment


def augments_batches(augment: Callable[[Any], Any] | None) -> bool:
    return getattr(augment, "alters_batches", False)


def forward_pass(call: Any, batch: dict[str, Any]) -> Any:
    """`run_model` of the tasks that answer in one call of the model."""
    return call(**batch)


def nothing_skipped(processor: Any, value: Any, name: str = "input") -> str:
    """`skipped_characters` of the tasks whose models read every input whole."""
    return ""


def no_router(state: dict[str, Any]) -> None:
    """`api_router` of the tasks that serve only /health and /predict."""
    return None


def predictions_as_they_are(
    values: list[str], predictions: list[dict[str, Any]], out_dir: Path
) -> list[dict[str, Any]]:
    return predictions


def labels_as_they_are(dataset: Any) -> tuple[Any, str | None]:
    return dataset, None
