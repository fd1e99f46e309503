"""`prepare`: bring the data into one shape, split it, and save it for training and evaluation.

Every source ends as three Parquet files (train, validation, test) with two columns: `input` (text,
image or waveform) and `label` (class or transcript). Writing is atomic: a failed prepare leaves the
previous data untouched.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import FlywheelError, unreachable
from ..core.paths import EXAMPLES_DIR, PREPARED_DIR
from ..tasks import task

if TYPE_CHECKING:  # the settings' schema loads the task: only the type is needed here
    from ..core.config import Params

SPLITS = ("train", "validation", "test")


def load_raw(params: Params) -> Any:
    """The dataset named by `data.source`, with its columns renamed to `input` and `label`."""
    source = params.data.source
    if source == "embedded":
        return task.embedded_dataset(params)
    if source.startswith("hf:"):
        from datasets import load_dataset

        try:
            dataset = load_dataset(source.removeprefix("hf:"))
        except OSError as error:  # the Hub unreachable or offline, or no such dataset
            raise unreachable(
                "data.source",
                source,
                error,
                "check the dataset id and the network (HF_HUB_OFFLINE=1 allows cached datasets "
                "only), or point data.source at a local folder",
            ) from None
        dataset = task.from_hub(dataset, params)
    else:
        path = Path(source)
        if not path.exists():
            raise FlywheelError(
                f"data.source: {source} does not exist: point it at your data, or use 'embedded'"
            )
        dataset = _read_source(path, params)
    return _canonical_columns(dataset, params)


# Files with one example per line after this many lines of header.
HEADER_LINES = {".csv": 1, ".jsonl": 0, ".json": 0}
LAYOUT = 'the layout README "Bring your own data" shows'


def _read_source(path: Path, params: Params) -> Any:
    """The task's reader, with a file it cannot read named in one line instead of a traceback
    from deep inside the CSV or JSON parser."""
    if path.is_file() and path.stat().st_size == 0:
        raise FlywheelError(
            f"data.source: {path} is empty: write your examples into it in {LAYOUT}"
        )
    header = HEADER_LINES.get(path.suffix) if path.is_file() else None
    if header is not None:
        lines = path.read_bytes().decode("utf-8", errors="replace").splitlines()
        if sum(1 for line in lines if line.strip()) <= header:
            raise FlywheelError(
                f"data.source: {path} holds no examples"
                f"{' (a header alone)' if header else ''}: add rows in {LAYOUT}"
            )
    try:
        return task.load_source(path, params)
    except FlywheelError:
        raise
    except Exception as error:  # whatever the parser raised, the file is the cause
        cause: BaseException = error
        while (underlying := cause.__cause__ or cause.__context__) is not None:
            cause = underlying
        summary = (str(cause).strip().splitlines() or [""])[0][:200]
        raise FlywheelError(
            f"data.source: {path} cannot be read ({type(cause).__name__}: {summary}): "
            f"save it as UTF-8 text in {LAYOUT}"
        ) from None


def _canonical_columns(dataset: Any, params: Params) -> Any:
    renames = {params.data.input_column: "input", params.data.target_column: "label"}
    columns = dataset.column_names
    names = columns if isinstance(columns, list) else next(iter(columns.values()))
    missing = [name for name in renames if name not in names]
    if missing:
        raise FlywheelError(
            f"data: column {missing[0]!r} not in {params.data.source} (it has {', '.join(names)}): "
            "set data.input_column / data.target_column"
        )
    dataset = dataset.rename_columns({old: new for old, new in renames.items() if old != new})
    return dataset.select_columns(["input", "label"])


def split(dataset: Any, params: Params) -> dict[str, Any]:
    """Train, validation and test splits: the source's own where it has all three, else drawn
    from its training data with the run's seed (stratified by class for classifiers)."""
    from datasets import DatasetDict

    if isinstance(dataset, DatasetDict) and all(name in dataset for name in SPLITS):
        return {name: dataset[name] for name in SPLITS}
    if isinstance(dataset, DatasetDict):
        dataset = dataset["train"]
    dataset, stratify = task.prepare_labels(dataset)
    dataset = dataset.shuffle(seed=params.seed)
    if params.data.max_samples:
        dataset = dataset.select(range(min(params.data.max_samples, len(dataset))))
    held_out = params.data.validation_fraction + params.data.test_fraction
    try:
        first = dataset.train_test_split(
            test_size=held_out, seed=params.seed, stratify_by_column=stratify
        )
        second = first["test"].train_test_split(
            test_size=params.data.test_fraction / held_out,
            seed=params.seed,
            stratify_by_column=stratify,
        )
    except ValueError as error:  # too few examples (of a class) for the three splits
        reason = str(error).splitlines()[0].rstrip(".")
        raise FlywheelError(
            f"data.source: the {len(dataset)} examples of {params.data.source} cannot be split "
            f"into train, validation and test ({reason}): add examples"
            f"{' of every class' if stratify else ''}"
        ) from None
    return {"train": first["train"], "validation": second["train"], "test": second["test"]}


def prepare(params: Params, out_dir: Path = PREPARED_DIR) -> dict[str, int]:
    """Write the three splits as Parquet; return their sizes."""
    import datasets

    datasets.disable_progress_bars()
    splits = split(load_raw(params), params)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".prepare-", dir=out_dir.parent))
    try:
        for name, dataset in splits.items():
            if len(dataset) == 0:
                raise FlywheelError(f"data: the {name} split is empty: provide more examples")
            dataset.flatten_indices().to_parquet(staging / f"{name}.parquet")
        shutil.rmtree(out_dir, ignore_errors=True)
        staging.rename(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    task.write_examples(splits["test"], EXAMPLES_DIR)
    return {name: len(dataset) for name, dataset in splits.items()}


def load_prepared(data_dir: Path = PREPARED_DIR) -> dict[str, Any]:
    """The prepared splits, read straight from Parquet (no cache files written next to them)."""
    import pyarrow.parquet as pq
    from datasets import Dataset

    require_prepared(data_dir)
    return {name: Dataset(pq.read_table(data_dir / f"{name}.parquet")) for name in SPLITS}


def require_prepared(data_dir: Path = PREPARED_DIR) -> None:
    missing = [name for name in SPLITS if not (data_dir / f"{name}.parquet").is_file()]
    if missing:
        raise FlywheelError(f"{data_dir}/{missing[0]}.parquet not found: run `prepare` first")


def build_model(params: Params, train: Any) -> tuple[Any, Any]:
    """The task's processor and model for training on `train`: from `model.pretrained` when set
    (a Hub id or a folder), else the small model its config describes."""
    try:
        return task.build(params, train, label_names(train))
    except OSError as error:
        if params.model.pretrained is None:
            raise
        raise unreachable(
            "model.pretrained",
            params.model.pretrained,
            error,
            "check the checkpoint id or folder and the network (HF_HUB_OFFLINE=1 allows cached "
            "checkpoints only), or set it to null for the small model",
        ) from None


def label_names(split: Any) -> list[str]:
    """A classification split's class names, in label order ([] for transcripts)."""
    feature = split.features["label"]
    return list(feature.names) if hasattr(feature, "names") else []


class Rows:
    """An encoded split held as columns of NumPy arrays: the Trainer's batch of rows by index.

    Read through `datasets` instead (an Arrow query and a formatter for every batch), a batch of
    32 small images took 3 ms to fetch, a fifth of each training step of the image model on CPU;
    from these columns it takes microseconds. Rows are what `datasets` gave: dicts of arrays."""

    def __init__(self, columns: dict[str, Any]) -> None:
        self.columns = columns
        self._length = len(next(iter(columns.values()))) if columns else 0

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {name: values[index] for name, values in self.columns.items()}

    def __getitems__(self, indices: list[int]) -> list[dict[str, Any]]:
        return [self[index] for index in indices]

    @property
    def column_names(self) -> list[str]:
        return list(self.columns)

    def with_column(self, name: str, values: Any) -> Rows:
        return Rows({**self.columns, name: values})


def encode(split: Any, processor: Any) -> Rows:
    """A split's model inputs and labels, computed once and kept in memory (no cache files)."""
    encoded = split.map(
        task.training_features(processor),
        batched=True,
        remove_columns=split.column_names,
        keep_in_memory=True,
        new_fingerprint=f"{split._fingerprint}-encoded",
    )
    # Arrays collate faster than Python lists: N-d columns read back as one array.
    return Rows(_as_arrays(encoded).with_format("numpy")[:])


def _as_arrays(encoded: Any) -> Any:
    """Nested-list columns whose rows share every dimension but the first (spectrograms, pixels)
    cast to datasets' N-d array types, which read back as one array per row instead of being
    rebuilt list by list on every batch (a third of a speech model's epoch on CPU)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    from datasets import Array2D, Array3D, Array4D, Array5D

    array_types = {2: Array2D, 3: Array3D, 4: Array4D, 5: Array5D}
    features = encoded.features.copy()
    for name in encoded.column_names:
        column = encoded.data.column(name)
        if not encoded.num_rows or not pa.types.is_list(column.type):
            continue  # empty, or scalars
        values = pc.list_flatten(column)
        if not pa.types.is_list(values.type):
            continue  # rows of scalars: already read fast
        shape: list[int] = []
        while values is not None and pa.types.is_list(values.type):
            widths = pc.unique(pc.list_value_length(values))
            values = pc.list_flatten(values) if len(widths) == 1 else None
            shape.append(widths[0].as_py() if len(widths) == 1 else -1)
        if values is None or len(shape) + 1 not in array_types:
            continue  # ragged inner dimension: stays a list
        dtype = np.dtype(values.type.to_pandas_dtype()).name
        features[name] = array_types[len(shape) + 1](shape=(None, *shape), dtype=dtype)
    return encoded.cast(features, keep_in_memory=True) if features != encoded.features else encoded


def data_hash(data_dir: Path = PREPARED_DIR) -> str:
    """The data version a run was trained on, as DVC names it in dvc.lock and in its cache."""
    from ..tracking.pipeline import directory_md5

    return directory_md5(data_dir)
