"""Files users hand in, fuzzed with Hypothesis (bounded, the same examples on every run): random
bytes, and real files cut short or with bytes overwritten or inserted, as a file of `prepare`'s
data source and as an input of `predict`. Each is read, or refused with one line that names the
file (the command line prints it as `error: ...` and exits 1); never another exception, and a
refused source leaves no prepared data behind."""

import csv
import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from {{ cookiecutter.package_name }}.core.config import load_params
from {{ cookiecutter.package_name }}.core.errors import FlywheelError
from {{ cookiecutter.package_name }}.core.paths import MODEL_DIR
from {{ cookiecutter.package_name }}.data.prepare import prepare
from {{ cookiecutter.package_name }}.serving.predict import Predictor, read_inputs
from {{ cookiecutter.package_name }}.tasks import task
from media_files import FILES

# Bounded: each prepared source is a few seconds' work for the slowest task.
EXAMPLES = 8
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,  # the same files on every run: a failure is reproducible
    suppress_health_check=list(HealthCheck),
)
# Examples in the fuzzed source: enough for every class in each of the three splits.
SOURCE_SIZE = 60


def mutations(real: bytes) -> st.SearchStrategy[bytes]:
    """`real` cut short, with a few bytes overwritten, or with bytes inserted."""
    at = st.integers(0, max(0, len(real) - 1))
    return st.one_of(
        st.integers(0, len(real)).map(lambda end: real[:end]),
        st.tuples(at, st.binary(min_size=1, max_size=8)).map(
            lambda change: real[: change[0]] + change[1] + real[change[0] + len(change[1]) :]
        ),
        st.tuples(at, st.binary(min_size=1, max_size=64)).map(
            lambda change: real[: change[0]] + change[1] + real[change[0] :]
        ),
    )


def handed_in(real: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """What a user may hand in where `real` files belong: random bytes, or a mutated real one."""
    return st.one_of(st.binary(max_size=2048), real.flatmap(mutations))


def one_line_naming(error: FlywheelError, name: str) -> None:
    message = str(error)
    assert "\n" not in message and name in message, message


def write_source(folder: Path, size: int) -> tuple[Path, list[Path], int]:
    """About `size` embedded examples in the layout README "Bring your own data" shows: the
    source (a file, or the folder), the files in it and the number of examples."""
    params = load_params()
    data = task.embedded_dataset(params)
    if task.TARGET == "class":  # as many of each class
        classes = sorted(set(data["label"]))
        each = [[i for i, label in enumerate(data["label"]) if label == c] for c in classes]
        data = data.select(sorted(i for indices in each for i in indices[: size // len(classes)]))
    else:
        data = data.select(range(size))
    folder.mkdir(parents=True)
    text_column, target_column = params.data.input_column, params.data.target_column
    if task.INPUT_KIND == "text" and task.TARGET != "speech":  # one CSV file
        names = getattr(data.features["label"], "names", None)
        source = folder / "examples.csv"
        with source.open("w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow([text_column, target_column])
            for row in data:
                writer.writerow([row["input"], names[row["label"]] if names else row["label"]])
        return source, [source], len(data)
    if task.TARGET == "class":  # one folder per class
        names = data.features["label"].names
        files = []
        for number, row in enumerate(data):
            suffix = ".png" if task.INPUT_KIND == "image" else ".wav"
            path = folder / names[row["label"]] / f"{number}{suffix}"
            path.parent.mkdir(exist_ok=True)
            if task.INPUT_KIND == "image":
                buffer = io.BytesIO()
                row["input"].save(buffer, format="PNG")
                path.write_bytes(buffer.getvalue())
            else:
                path.write_bytes(wav(row["input"]))
            files.append(path)
        return folder, files, len(data)
    # Clips with their transcripts in metadata.csv (speech in or speech out).
    column = target_column if task.INPUT_KIND == "audio" else text_column
    clip, text = ("input", "label") if task.INPUT_KIND == "audio" else ("label", "input")
    metadata = folder / "metadata.csv"
    files = [metadata]
    with metadata.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["file_name", column])
        for number, row in enumerate(data):
            path = folder / f"{number}.wav"
            path.write_bytes(wav(row[clip]))
            writer.writerow([path.name, row[text]])
            files.append(path)
    return folder, files, len(data)


def wav(samples) -> bytes:
    from {{ cookiecutter.package_name }}.tasks.audio import (
        encode_wav,  # the audio tasks' module
    )

    return encode_wav(np.asarray(samples, dtype=np.float32))


def test_prepare_reads_or_names_every_file_it_is_handed(trained, tmp_path) -> None:
    original = tmp_path / "original"
    source, files, examples = write_source(original, SOURCE_SIZE)
    params = load_params()
    # Splits large enough to hold every class (ten digits) with a few examples each.
    params = params.model_copy(
        update={
            "data": params.data.model_copy(
                update={"validation_fraction": 0.25, "test_fraction": 0.25}
            )
        }
    )
    out = tmp_path / "prepared"
    data = params.data.model_copy(update={"source": str(source)})
    prepared = prepare(params.model_copy(update={"data": data}), out)
    assert sum(prepared.values()) == examples  # the unaltered source is read whole
    shutil.rmtree(out)

    @st.composite
    def altered(draw) -> tuple[Path, bytes]:
        path = draw(st.sampled_from(files))
        return path, draw(handed_in(st.just(path.read_bytes())))

    @given(change=altered())
    @FUZZ
    def fuzz(change: tuple[Path, bytes]) -> None:
        path, content = change
        copy = tmp_path / "fuzzed"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(original, copy)
        (copy / path.relative_to(original)).write_bytes(content)
        fuzzed = copy / source.relative_to(original) if source != original else copy
        data = params.data.model_copy(update={"source": str(fuzzed)})
        try:
            prepare(params.model_copy(update={"data": data}), out)
        except FlywheelError as error:
            one_line_naming(error, str(fuzzed))  # the source, or the file in it
            assert not out.exists()
        else:
            assert sorted(p.name for p in out.iterdir()) == [
                "feedback.json",
                "test.parquet",
                "train.parquet",
                "validation.parquet",
            ]
            shutil.rmtree(out)

    fuzz()


@pytest.fixture(scope="module")
def predictor(trained) -> Predictor:
    return Predictor(MODEL_DIR)


def test_predict_answers_or_names_every_input_it_is_handed(predictor, tmp_path) -> None:
    if task.INPUT_KIND == "text":
        inputs = st.text(max_size=200)
    else:
        media_types = task.input_schema(predictor.processor)["contentMediaType"].split(", ")
        inputs = handed_in(st.one_of(*(FILES[media_type] for media_type in media_types)))

    @given(raw=inputs)
    @FUZZ
    def fuzz(raw) -> None:
        if task.INPUT_KIND == "text":
            value, name = raw, "input"
        else:
            path = tmp_path / "handed-in"
            path.write_bytes(raw)
            value = name = str(path)
        try:
            answers = predictor.predict(read_inputs([value]))
        except FlywheelError as error:
            one_line_naming(error, name)
        else:
            assert len(answers) == 1 and answers[0]

    fuzz()
