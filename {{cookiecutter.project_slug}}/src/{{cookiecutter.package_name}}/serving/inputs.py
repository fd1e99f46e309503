"""The two shapes an input takes on its way to the model, whatever the task: a text (typed on the
command line, sent as JSON) or a file (named on the command line, uploaded as a form).

A task names its shape (`INPUTS` in its module); the command line, the server, the MLflow model
and `bench` ask the shape what to do instead of testing the task's kind, so a new kind of input
is a new shape here, not an edit of every module that reads inputs.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations at run time,
# and UploadFile is imported where the endpoint is defined, not at the top of the module.
import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from ..core.errors import FlywheelError

# The most inputs one request may carry, and the largest upload.
MAX_BATCH = 64
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
# The longest text a request may carry (a task may take less: text to speech).
MAX_TEXT_CHARS = 10_000

# What an endpoint hands its inputs to: the server's batcher, answering {"predictions": [...]};
# and, where it decoded them, the inputs as sent (the files' bytes), which the recorder keeps.
Batched = Callable[..., Awaitable[dict[str, list[dict[str, Any]]]]]


class PredictRequest(BaseModel):
    texts: list[str] = Field(min_length=1, max_length=MAX_BATCH)


class Texts:
    """Text as typed: JSON `{"texts": [...]}` over HTTP, one quoted argument each on the command
    line, the MLflow model's input column as is."""

    kind = "text"
    command_line_help = "Texts, one quoted argument each."
    extra_answers: ClassVar[dict[int, str]] = {}

    def from_command_line(self, values: list[str], task: Any) -> list[Any]:
        return values

    def from_model_column(self, value: str) -> Any:
        return value

    def http_body(self, example: Any) -> tuple[bytes, str]:
        return json.dumps({"texts": [example]}).encode(), "application/json"

    def add_predict_endpoint(
        self, app: Any, task: Any, state: dict[str, Any], batched: Batched, answers: dict[Any, Any]
    ) -> None:
        from fastapi import HTTPException

        @app.post("/predict", responses=answers)
        async def predict_texts(request: PredictRequest) -> dict[str, list[dict[str, Any]]]:
            for index, text in enumerate(request.texts):
                if not text.strip():
                    raise HTTPException(422, f"texts[{index}] is empty: send {task.ACCEPTED_INPUT}")
                if len(text) > MAX_TEXT_CHARS:
                    message = f"texts[{index}] is longer than {MAX_TEXT_CHARS} characters"
                    raise HTTPException(422, message)
                try:
                    # The task's own checks (text to speech: a shorter limit), per request.
                    task.decode_input(text, name=f"texts[{index}]")
                    processor = state["predictor"].processor
                    task.skipped_characters(processor, text, name=f"texts[{index}]")
                except FlywheelError as error:
                    raise HTTPException(422, str(error)) from None
            return await batched(request.texts)

    def publish_rules(
        self, content: dict[str, Any], fields: dict[str, Any], rules: dict[str, Any]
    ) -> None:
        """Each text's rules (length, needed characters) as the schema of `texts`' items."""
        fields["properties"]["texts"]["items"] = rules


class Files:
    """A file of the task's `kind` (image, audio): a multipart upload named `file` over HTTP, a
    path on the command line, base64 in the MLflow model's input column."""

    command_line_help = "Paths of the files to predict."
    # Answers besides the shared ones (serve.ERROR_ANSWERS), for the OpenAPI schema.
    extra_answers: ClassVar[dict[int, str]] = {413: "The file is larger than the server accepts."}

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def from_command_line(self, values: list[str], task: Any) -> list[Any]:
        paths = [Path(value) for value in values]
        missing = [str(path) for path in paths if not path.is_file()]
        if missing:
            raise FlywheelError(
                f"input file {missing[0]} not found: pass paths to {self.kind} files"
            )
        # Decoded here, where the file's name is known: an undecodable file is named in the error.
        return [task.decode_input(path.read_bytes(), name=str(path)) for path in paths]

    def from_model_column(self, value: str) -> Any:
        return base64.b64decode(value)

    def http_body(self, example: Any) -> tuple[bytes, str]:
        boundary = "flywheel-bench"
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            'filename="example"\r\nContent-Type: application/octet-stream\r\n\r\n'
        )
        body = head.encode() + example + f"\r\n--{boundary}--\r\n".encode()
        return body, f"multipart/form-data; boundary={boundary}"

    def add_predict_endpoint(
        self, app: Any, task: Any, state: dict[str, Any], batched: Batched, answers: dict[Any, Any]
    ) -> None:
        # python-multipart, which FastAPI needs for uploads, is a dependency of file tasks only.
        from fastapi import HTTPException, UploadFile

        @app.post("/predict", responses=answers)
        async def predict_file(file: UploadFile) -> dict[str, list[dict[str, Any]]]:
            data = await file.read(MAX_UPLOAD_BYTES + 1)
            if len(data) > MAX_UPLOAD_BYTES:
                raise HTTPException(413, f"file is larger than {MAX_UPLOAD_BYTES} bytes")
            if not data:
                raise HTTPException(422, f"file is empty: upload {task.ACCEPTED_INPUT}")
            try:
                # Decoded here: an undecodable file fails its own request, not its batch.
                decoded = await asyncio.to_thread(task.decode_input, data, name="file")
            except FlywheelError as error:
                raise HTTPException(422, str(error)) from None
            return await batched([decoded], sent=[data])

    def publish_rules(
        self, content: dict[str, Any], fields: dict[str, Any], rules: dict[str, Any]
    ) -> None:
        """An upload's media types are its encoding in the schema (OpenAPI 3.1, multipart)."""
        rules = dict(rules)
        content["encoding"] = {"file": {"contentType": rules.pop("contentMediaType")}}
        fields["properties"]["file"] |= rules


TEXTS = Texts()
