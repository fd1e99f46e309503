"""The project's task module offers every name of the task contract, with the same parameters."""

import inspect

from {{ cookiecutter.package_name }}.core.schema import Judging, Section
from {{ cookiecutter.package_name }}.tasks import task
from {{ cookiecutter.package_name }}.tasks.contract import Task


def required(function) -> list[str]:
    return [
        parameter.name
        for parameter in inspect.signature(function).parameters.values()
        if parameter.default is inspect.Parameter.empty
    ]


def test_the_task_offers_every_name_of_the_contract() -> None:
    assert isinstance(task, Task)


def test_the_task_functions_take_the_contract_parameters() -> None:
    for name, declared in vars(Task).items():
        if name.startswith("_") or not inspect.isfunction(declared):
            continue
        assert required(getattr(task, name)) == required(declared)[1:], name  # no `self`
        assert set(inspect.signature(declared).parameters) - {"self"} <= set(
            inspect.signature(getattr(task, name)).parameters
        ), name


def test_the_task_declares_its_facts() -> None:
    assert task.INPUT_KIND in {"text", "image", "audio"}
    assert task.TARGET in {"class", "transcript", "speech"}
    # The type checker reads these as the contract declares them; the asserts check the module.
    assert isinstance(task.ACCEPTED_INPUT, str)
    assert task.ACCEPTED_INPUT
    assert task.EXPORT_FORMAT in {"onnx", "safetensors", None}
    # ONNX is exported exactly where nothing says why not.
    assert (task.EXPORT_FORMAT == "onnx") == (task.WHY_NO_ONNX is None)
    assert task.REPORT_FILES and all(isinstance(name, str) for name in task.REPORT_FILES)
    assert all(isinstance(name, str) for name in task.REQUIREMENTS)
    assert isinstance(task.JUDGING, Judging)
    assert task.JUDGING.baseline_to_beat in task.JUDGING.baselines
    assert issubclass(task.DataParams, Section)
    assert issubclass(task.ModelParams, Section)


def test_the_task_requirements_are_dependencies_of_the_project() -> None:
    import re
    import tomllib
    from pathlib import Path

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    meta = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    names = {re.split(r"[<>=!~\[; ]", line)[0].lower() for line in meta["dependencies"]}
    assert set(task.REQUIREMENTS) <= names
