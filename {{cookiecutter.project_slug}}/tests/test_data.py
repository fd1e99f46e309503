from pathlib import Path

import numpy as np
import pytest

from {{ cookiecutter.package_name }}.core.config import load_params
from {{ cookiecutter.package_name }}.core.errors import FlywheelError
from {{ cookiecutter.package_name }}.core.paths import MODEL_DIR, PREPARED_DIR
from {{ cookiecutter.package_name }}.data import prepare as preparing
from {{ cookiecutter.package_name }}.data.prepare import (
    SPLITS,
    Rows,
    data_hash,
    encode,
    load_prepared,
    load_raw,
    prepare,
    split,
)
from {{ cookiecutter.package_name }}.tasks import task


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


def test_splits_are_memory_mapped_and_a_big_encoded_split_reads_alike(trained, monkeypatch) -> None:
    """Splits are mapped from files on disk, not loaded into memory; an encoded split over the
    in-memory size stays mapped too, and its rows are those of the in-memory encoding."""
    splits = load_prepared()
    assert all(split.cache_files for split in splits.values())
    processor, _ = task.load(MODEL_DIR)
    test = splits["test"]
    in_memory = encode(test, processor)
    monkeypatch.setattr(preparing, "ROWS_IN_MEMORY_BYTES", 0)
    mapped = encode(test, processor)
    assert isinstance(in_memory, Rows) and not isinstance(mapped, Rows)
    assert mapped.cache_files and len(mapped) == len(in_memory) == len(test)
    rows = [0, len(test) // 2, len(test) - 1]
    for kept, read in zip(in_memory.__getitems__(rows), mapped.__getitems__(rows), strict=True):
        assert kept.keys() == read.keys()
        for name, values in kept.items():
            np.testing.assert_array_equal(values, read[name])


@pytest.mark.parametrize("max_samples", [None, 150])
def test_the_splits_are_those_datasets_draws(max_samples: int | None) -> None:
    """`split` draws positions itself (datasets' stratified split read labels a row at a time):
    the same rows, in the same order, as `shuffle` and two `train_test_split`s with the seed."""
    params = load_params()
    data = params.data.model_copy(update={"max_samples": max_samples})
    params = params.model_copy(update={"data": data})
    dataset, stratify = task.prepare_labels(load_raw(params))
    drawn = split(dataset, params)
    shuffled = dataset.shuffle(seed=params.seed)
    if max_samples:
        shuffled = shuffled.select(range(min(max_samples, len(shuffled))))
    held_out = params.data.validation_fraction + params.data.test_fraction
    first = shuffled.train_test_split(
        test_size=held_out, seed=params.seed, stratify_by_column=stratify
    )
    second = first["test"].train_test_split(
        test_size=params.data.test_fraction / held_out,
        seed=params.seed,
        stratify_by_column=stratify,
    )
    expected = {"train": first["train"], "validation": second["train"], "test": second["test"]}
    for name in SPLITS:
        assert drawn[name].to_dict() == expected[name].to_dict(), name


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
        ("blank-lines.csv", b"text,label\n\n \n\r\n", "holds no examples (a header alone)"),
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
