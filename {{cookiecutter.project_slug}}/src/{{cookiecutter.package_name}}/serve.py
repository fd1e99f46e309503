"""`serve`: HTTP inference with FastAPI: `GET /health` and `POST /predict`.

Requests go through `Predictor`, i.e. the same preprocessing as training. Bad payloads get a 4xx
with a message naming the problem, never a 500.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, UploadFile
from pydantic import BaseModel, Field

from . import __version__
from .config import MODEL_DIR
from .errors import FlywheelError
from .predict import Predictor
from .tasks import task

MAX_TEXT_CHARS = 10_000
MAX_BATCH = 64
MAX_UPLOAD_BYTES = 10 * 1024 * 1024


class PredictRequest(BaseModel):
    texts: list[str] = Field(min_length=1, max_length=MAX_BATCH)


def create_app(model_dir: Path = MODEL_DIR, predictor: Predictor | None = None) -> FastAPI:
    """The app; it loads the model at start-up unless given one already loaded."""
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state["predictor"] = predictor if predictor is not None else Predictor(model_dir)
        yield
        state.clear()

    app = FastAPI(title="{{ cookiecutter.project_slug }}", version=__version__, lifespan=lifespan)

    @app.get("/health")
    def health() -> dict[str, str | None]:
        manifest = state["predictor"].manifest
        return {
            "status": "ok",
            "task": "{{ cookiecutter.task }}",
            "model": str(model_dir),
            # Which trained model answers: its MLflow run and the checksum of its files.
            "run_id": manifest["run_id"],
            "checksum": manifest["checksum"],
        }

    if task.INPUT_KIND == "text":

        @app.post("/predict")
        def predict_texts(request: PredictRequest) -> dict[str, list[dict[str, Any]]]:
            for index, text in enumerate(request.texts):
                if not text.strip():
                    raise HTTPException(422, f"texts[{index}] is empty: send {task.ACCEPTED_INPUT}")
                if len(text) > MAX_TEXT_CHARS:
                    message = f"texts[{index}] is longer than {MAX_TEXT_CHARS} characters"
                    raise HTTPException(413, message)
            return {"predictions": state["predictor"].predict(request.texts)}

    else:
        # python-multipart, which FastAPI needs for uploads, is a dependency of file tasks only.

        @app.post("/predict")
        async def predict_file(file: UploadFile) -> dict[str, list[dict[str, Any]]]:
            data = await file.read(MAX_UPLOAD_BYTES + 1)
            if len(data) > MAX_UPLOAD_BYTES:
                raise HTTPException(413, f"file is larger than {MAX_UPLOAD_BYTES} bytes")
            if not data:
                raise HTTPException(422, f"file is empty: upload {task.ACCEPTED_INPUT}")
            try:
                predictions = state["predictor"].predict([data])
            except FlywheelError as error:
                raise HTTPException(422, str(error)) from None
            return {"predictions": predictions}

    return app


def run(host: str, port: int, model_dir: Path = MODEL_DIR) -> None:
    import uvicorn

    # Loaded (and its files checked) before the server starts: a problem is one line, not a
    # traceback from the server's start-up.
    predictor = Predictor(model_dir)
    uvicorn.run(create_app(model_dir, predictor), host=host, port=port)
