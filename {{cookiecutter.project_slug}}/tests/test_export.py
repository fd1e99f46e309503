"""`export`: the trained model as ONNX, answering as PyTorch does on the whole test split, and
served with onnxruntime when params.yaml says `serve.runtime: onnx`."""

import json
import shutil

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from answers import same_prediction
from {{ cookiecutter.package_name }}.cli import app
from {{ cookiecutter.package_name }}.core.config import ServeParams
from {{ cookiecutter.package_name }}.core.errors import FlywheelError
from {{ cookiecutter.package_name }}.core.paths import MODEL_DIR, ONNX_DIR
from {{ cookiecutter.package_name }}.data.prepare import load_prepared
from {{ cookiecutter.package_name }}.serving.export import ONNX_FILE, SOURCE_FILE
from {{ cookiecutter.package_name }}.serving.predict import Predictor
from {{ cookiecutter.package_name }}.serving.serve import create_app
from {{ cookiecutter.package_name }}.tasks import task

# The same float32 arithmetic in another order: the outputs differ at rounding level only.
MAX_ABS_DIFFERENCE = 1e-4


@pytest.fixture(scope="module")
def exported(trained) -> dict:
    result = CliRunner().invoke(app, ["export"])
    assert result.exit_code == 0, result.output
    assert f"exported {ONNX_DIR / ONNX_FILE}: largest difference from PyTorch" in result.output
    return json.loads((ONNX_DIR / SOURCE_FILE).read_text(encoding="utf-8"))


def test_the_graph_matches_pytorch_on_every_test_input(exported) -> None:
    assert exported["test_inputs"] == len(load_prepared()["test"])
    assert 0 <= exported["max_abs_difference"] <= MAX_ABS_DIFFERENCE, exported
    assert exported["checksum"] == Predictor().manifest["checksum"]


def test_onnxruntime_answers_every_test_input_as_pytorch(exported) -> None:
    test = load_prepared()["test"]
    raws = [task.example_input(test.select([i])) for i in range(len(test))]
    with_torch, with_onnx = Predictor(), Predictor(runtime="onnx")
    for start in range(0, len(raws), 16):
        batch = raws[start : start + 16]
        pairs = zip(with_torch.predict(batch), with_onnx.predict(batch), strict=True)
        for index, (one, other) in enumerate(pairs, start):
            assert same_prediction(one, other), (index, one, other)


def test_serve_answers_with_onnxruntime_when_params_say_so(exported) -> None:
    example = task.example_input(load_prepared()["test"])
    serving = ServeParams(max_batch_size=8, max_wait_ms=0, max_queue=64, runtime="onnx")
    with TestClient(create_app(MODEL_DIR, serving=serving)) as client:
        assert client.get("/health").json()["runtime"] == "onnx"
        if task.INPUT_KIND == "text":
            response = client.post("/predict", json={"texts": [example]})
        else:
            response = client.post("/predict", files={"file": ("upload", example)})
    assert response.status_code == 200, response.text
    [answer] = response.json()["predictions"]
    [expected] = Predictor().predict([example])
    assert same_prediction(answer, expected)


def test_a_missing_or_stale_export_is_refused_in_one_line(exported, tmp_path) -> None:
    with pytest.raises(FlywheelError, match=r"holds no exported model: run `export` first$"):
        Predictor(runtime="onnx", onnx_dir=tmp_path / "nothing")
    stale = tmp_path / "stale"
    shutil.copytree(ONNX_DIR, stale)
    source = json.loads((stale / SOURCE_FILE).read_text(encoding="utf-8"))
    source["checksum"] = "0" * 64  # as if `train` had saved another model since
    (stale / SOURCE_FILE).write_text(json.dumps(source), encoding="utf-8")
    with pytest.raises(FlywheelError, match=r"exported from another model .*: run `export` again$"):
        Predictor(runtime="onnx", onnx_dir=stale)
