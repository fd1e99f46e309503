from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.core.config import load_params
from {{ cookiecutter.package_name }}.core.errors import FlywheelError
from {{ cookiecutter.package_name }}.core.paths import PREPARED_DIR
from {{ cookiecutter.package_name }}.data.prepare import (
    SPLITS,
    data_hash,
    load_prepared,
    prepare,
)


def test_prepare_is_deterministic(tmp_path: Path) -> None:
    params = load_params()
    prepare(params, tmp_path / "first")
    prepare(params, tmp_path / "second")
    assert data_hash(tmp_path / "first") == data_hash(tmp_path / "second")


def test_splits_are_non_empty_and_sized_by_the_fractions(trained) -> None:
    splits = load_prepared()
    sizes = {name: len(splits[name]) for name in SPLITS}
    total = sum(sizes.values())
    assert all(size > 0 for size in sizes.values())
    fraction = trained.params.data.test_fraction
    assert abs(sizes["test"] / total - fraction) < 0.05
    assert set(splits["train"].column_names) == {"input", "label"}


def test_a_missing_source_is_named(tmp_path: Path) -> None:
    params = load_params()
    bad = params.model_copy(update={"data": params.data.model_copy(update={"source": "nope/x"})})
    with pytest.raises(FlywheelError, match=r"data\.source: nope/x does not exist"):
        prepare(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_failed_prepare_keeps_the_previous_data(trained) -> None:
    before = data_hash(PREPARED_DIR)
    params = trained.params
    bad = params.model_copy(update={"data": params.data.model_copy(update={"source": "nope"})})
    with pytest.raises(FlywheelError):
        prepare(bad)
    assert data_hash(PREPARED_DIR) == before


@pytest.mark.parametrize(
    "name, content, said",
    [
        ("empty.csv", b"", "is empty: write your examples into it"),
        ("header.csv", b"text,label\n", "holds no examples (a header alone): add rows"),
        ("blank.jsonl", b"\n  \n", "holds no examples: add rows"),
        ("binary.csv", bytes(range(256)) * 16, None),  # each task's reader names its own reason
    ],
)
def test_a_source_file_it_cannot_read_is_one_line_and_nothing_is_written(
    tmp_path: Path, name: str, content: bytes, said: str | None
) -> None:
    source = tmp_path / name
    source.write_bytes(content)
    params = load_params()
    bad = params.model_copy(update={"data": params.data.model_copy(update={"source": str(source)})})
    with pytest.raises(FlywheelError) as error:
        prepare(bad, tmp_path / "out")
    message = str(error.value)
    assert message.startswith(f"data.source: {source} ") and "\n" not in message, message
    assert said is None or said in message, message
    assert not (tmp_path / "out").exists()
