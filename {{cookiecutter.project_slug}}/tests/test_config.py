from pathlib import Path

import pytest
import yaml

from {{ cookiecutter.package_name }}.core.config import load_params
from {{ cookiecutter.package_name }}.core.errors import FlywheelError
from {{ cookiecutter.package_name }}.tasks import task

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def write_params(tmp_path: Path, change) -> Path:
    raw = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text(encoding="utf-8"))
    change(raw)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def test_the_shipped_params_load() -> None:
    params = load_params(PROJECT_ROOT / "params.yaml")
    assert params.data.source == "embedded"
    assert params.flat()["train.epochs"] == params.train.epochs


def test_an_unknown_key_is_named_with_the_allowed_ones(tmp_path: Path) -> None:
    path = write_params(tmp_path, lambda raw: raw["train"].update(epoch=3))
    with pytest.raises(FlywheelError) as error:
        load_params(path)
    message = str(error.value)
    assert "train.epoch: unknown key" in message
    assert "epochs" in message and "\n" not in message


def test_a_misspelled_key_is_named_before_the_key_it_hides(tmp_path: Path) -> None:
    path = write_params(tmp_path, lambda raw: raw["train"].update(epoch=raw["train"].pop("epochs")))
    with pytest.raises(FlywheelError, match=r"train\.epoch: unknown key; did you mean epochs\?"):
        load_params(path)


def test_a_wrong_type_is_named(tmp_path: Path) -> None:
    path = write_params(tmp_path, lambda raw: raw["train"].update(epochs="many"))
    with pytest.raises(FlywheelError, match=r"train\.epochs: .*integer.*'many'"):
        load_params(path)


def test_vllm_serves_only_what_export_writes_as_a_checkpoint(tmp_path: Path) -> None:
    path = write_params(tmp_path, lambda raw: raw["serve"].update(engine="vllm"))
    if task.EXPORT_FORMAT == "safetensors":  # text generation
        assert load_params(path).serve.engine == "vllm"
        return
    refused = r"serve\.engine: .*vllm serves text generation only; use torch"
    with pytest.raises(FlywheelError, match=refused):
        load_params(path)


def test_a_missing_key_is_named(tmp_path: Path) -> None:
    path = write_params(tmp_path, lambda raw: raw["model"].pop("pretrained"))
    with pytest.raises(FlywheelError, match=r"model\.pretrained: Field required"):
        load_params(path)


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("seed: 1\ntrain: [unclosed\n", encoding="utf-8")
    with pytest.raises(FlywheelError, match=r"not valid YAML at line \d+"):
        load_params(path)


def test_a_missing_file_says_where_to_run(tmp_path: Path) -> None:
    with pytest.raises(FlywheelError, match="not found: run from the project root"):
        load_params(tmp_path / "nope.yaml")
