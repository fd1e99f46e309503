"""Traffic as `serve` keeps it with monitor.keep_inputs: the test split's first inputs, each
answered by a model and written by the server's recorder; and params.yaml with other budgets."""

import io
from pathlib import Path
from typing import Any

from {{ cookiecutter.package_name }}.data.prepare import load_prepared
from {{ cookiecutter.package_name }}.lifecycle.monitor import Recorder
from {{ cookiecutter.package_name }}.serving.predict import Predictor
from {{ cookiecutter.package_name }}.tasks import task


def keep(model_dir: Path, settings: Any, folder: Path, count: int, new: bool = False) -> list[Any]:
    """Record `count` answered inputs in `folder`, as a server with keep_inputs does; the inputs
    as clients sent them (text, or a file's bytes): the test split's, or (`new`) inputs made from
    them that no split holds."""
    test = load_prepared(names=("test",))["test"]
    inputs = [task.example_input(test.select([index])) for index in range(min(count, len(test)))]
    if new:
        inputs = [unseen(raw, number) for number, raw in enumerate(inputs)]
    predictor = Predictor(model_dir)
    recorder = Recorder(
        predictor.processor, settings.model_copy(update={"keep_inputs": True}), folder
    )
    for raw in inputs:  # one request each, as clients send them
        recorder.record([raw], predictor.predict([raw]))
    recorder.close()
    return inputs


def unseen(raw: Any, number: int) -> Any:
    """An input made from `raw` that is in no split: a numbered text, a turned image, a
    reversed recording."""
    if isinstance(raw, str):
        return f"{raw} ({number})"
    decoded = task.decode_input(raw)
    if task.INPUT_KIND == "image":
        buffer = io.BytesIO()
        decoded.rotate(90).save(buffer, format="PNG")
        return buffer.getvalue()
    from {{ cookiecutter.package_name }}.tasks.audio import encode_wav

    return encode_wav(decoded[::-1].copy())


def set_keys(params_file: Path, **values: Any) -> None:
    """Set keys of a params.yaml by name (each appears once, in its section)."""
    lines = params_file.read_text(encoding="utf-8").splitlines()
    for key, value in values.items():
        [index] = [n for n, line in enumerate(lines) if line.startswith(f"  {key}:")]
        lines[index] = f"  {key}: {value}"
    params_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
