"""`prepare`: bring the data into one shape, split it, and save it for training and evaluation.

Every source ends as three Parquet files (train, validation, test) with two columns: `input` (text,
image or waveform) and `label` (class or transcript). Writing is atomic: a failed prepare leaves the
previous data untouched.
"""

from __future__ import annotations

import atexit
import functools
import itertools
import json
import math
import os
import shutil
import tempfile
import uuid
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import FlywheelError, unreachable
from ..core.paths import EXAMPLES_DIR, FEEDBACK_DIR, PREPARED_DIR
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
    if header is not None and not _has_rows(path, header):
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


def _has_rows(path: Path, header: int) -> bool:
    """Whether the file has a non-blank line after its header, read line by line: a file of any
    size costs one line of memory."""
    with path.open("rb") as lines:
        non_blank = (line for line in lines if line.strip())
        return next(itertools.islice(non_blank, header, None), None) is not None


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
    import numpy as np

    dataset, stratify = task.prepare_labels(dataset)
    # Rows are drawn as positions, in the order `Dataset.shuffle(seed)` draws, and split as
    # `Dataset.train_test_split(seed=...)` splits, so the splits are those datasets would give;
    # but its stratified split reads the label column one row at a time (datasets 5.2: 100 s of
    # a million rows' 114 s), so the labels are read here, in batches.
    if len(dataset) == 0:
        raise FlywheelError(f"data.source: {params.data.source} holds no examples: add rows")
    order = np.random.default_rng(params.seed).permutation(len(dataset))
    if params.data.max_samples:
        order = order[: params.data.max_samples]
        labels = _column(dataset.select(order), stratify) if stratify else None
    else:
        labels = _column(dataset, stratify)[order] if stratify else None
    held_out = params.data.validation_fraction + params.data.test_fraction
    try:
        train_rows, held_out_rows = _split_positions(
            len(order), held_out, params.seed, labels, ("train", "held-out")
        )
        validation_rows, test_rows = _split_positions(
            len(held_out_rows),
            params.data.test_fraction / held_out,
            params.seed,
            None if labels is None else labels[held_out_rows],
            ("validation", "test"),
        )
    except ValueError as error:  # too few examples (of a class) for the three splits
        raise FlywheelError(
            f"data.source: the {len(order)} examples of {params.data.source} cannot be split "
            f"into train, validation and test ({error}): add examples"
            f"{' of every class' if stratify else ''}"
        ) from None
    rows = {
        "train": order[train_rows],
        "validation": order[held_out_rows][validation_rows],
        "test": order[held_out_rows][test_rows],
    }
    return {name: dataset.select(positions) for name, positions in rows.items()}


def _column(dataset: Any, name: str) -> Any:
    """One column of a dataset as a NumPy array, read a batch at a time."""
    import numpy as np

    batches = dataset.select_columns([name]).with_format("numpy").iter(batch_size=BATCH_ROWS)
    return np.concatenate([batch[name] for batch in batches])


def _split_positions(
    count: int, test_size: float, seed: int, labels: Any, parts: tuple[str, str]
) -> tuple[Any, Any]:
    """Positions of the two `parts` of `count` rows, as `Dataset.train_test_split` draws them
    (the second `test_size` of them; stratified by `labels` where given)."""
    import numpy as np
    from datasets.utils.stratify import stratified_shuffle_split_generate_indices

    n_test = math.ceil(test_size * count)
    n_train = count - n_test
    if n_train <= 0:
        raise ValueError(f"the {parts[0]} split would be empty")
    generator = np.random.default_rng(seed)
    if labels is None:
        permutation = generator.permutation(count)
        return permutation[n_test : n_test + n_train], permutation[:n_test]
    try:
        train, test = next(
            stratified_shuffle_split_generate_indices(labels, n_train, n_test, rng=generator)
        )
    except ValueError as error:
        reason = str(error).splitlines()[0].rstrip(".")
        if reason == "Minimum class count error":  # datasets' words, made a sentence
            reason = "a class has a single example"
        raise ValueError(reason) from None
    return np.asarray(train), np.asarray(test)


# What `prepare` writes beside the splits: the Label Studio exports it added (labelling.py).
FEEDBACK_FILE = "feedback.json"


def prepare(
    params: Params, out_dir: Path = PREPARED_DIR, feedback_dir: Path = FEEDBACK_DIR
) -> dict[str, int]:
    """Write the three splits as Parquet, the labelled exports in `feedback_dir` added to the
    training split; return their sizes (and the rows from feedback)."""
    import datasets

    datasets.disable_progress_bars()
    splits, added = with_feedback(split(load_raw(params), params), feedback_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".prepare-", dir=out_dir.parent))
    try:
        for name, dataset in splits.items():
            if len(dataset) == 0:
                raise FlywheelError(f"data: the {name} split is empty: provide more examples")
            dataset.flatten_indices().to_parquet(staging / f"{name}.parquet")
        (staging / FEEDBACK_FILE).write_text(json.dumps(added, indent=2) + "\n", encoding="utf-8")
        shutil.rmtree(out_dir, ignore_errors=True)
        staging.rename(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    task.write_examples(splits["test"], EXAMPLES_DIR)
    sizes = {name: len(dataset) for name, dataset in splits.items()}
    return sizes | {"feedback": added["rows"], "feedback_held_out": added["held_out"]}


def with_feedback(
    splits: dict[str, Any], feedback_dir: Path
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The splits, the training split with the labelled rows of the Label Studio exports in
    `feedback_dir` after its own; and what was added, for the run's lineage. The validation and
    test splits stay the source's, so that runs before and after feedback are scored alike, and
    a labelled input that is one of theirs (an exact copy) is left out of training."""
    from datasets import Dataset, concatenate_datasets

    from .labelling import feedback

    train = splits["train"]
    inputs, labels, added = feedback(feedback_dir, label_names(train))
    if not inputs:
        return splits, added
    held_out = {
        _fingerprint(value)
        for name in ("validation", "test")
        for batch in splits[name].select_columns(["input"]).iter(batch_size=BATCH_ROWS)
        for value in batch["input"]
    }
    rows = [
        (value, label)
        for value, label in zip(inputs, labels, strict=True)
        if _fingerprint(value) not in held_out
    ]
    added |= {"rows": len(rows), "held_out": len(inputs) - len(rows)}
    if not rows:
        return splits, added
    columns = {"input": [value for value, _ in rows], "label": [label for _, label in rows]}
    extra = Dataset.from_dict(columns, features=train.features)
    return {**splits, "train": concatenate_datasets([train, extra])}, added


def _fingerprint(value: Any) -> str:
    """A decoded input's hash: text, an image's pixels, a waveform's samples."""
    import hashlib

    import numpy as np

    if isinstance(value, str):
        content = value.encode("utf-8")
    elif hasattr(value, "mode") and hasattr(value, "tobytes"):  # a PIL image
        content = f"{value.mode}{value.size}".encode() + value.tobytes()
    else:
        content = np.asarray(value, dtype=np.float32).tobytes()
    return hashlib.sha256(content).hexdigest()


def feedback_rows(data_dir: Path = PREPARED_DIR) -> int:
    """How many training rows of the prepared data came from data/feedback (0 before it)."""
    record = data_dir / FEEDBACK_FILE
    return json.loads(record.read_text(encoding="utf-8"))["rows"] if record.is_file() else 0


def load_prepared(
    data_dir: Path = PREPARED_DIR, names: tuple[str, ...] = SPLITS
) -> dict[str, Any]:
    """The prepared splits (`names` of them), memory-mapped: each Parquet file is copied batch
    by batch into an Arrow file in this process's scratch folder, so a split of any size costs
    pages the system can drop, not memory, and no cache file is written beside the data."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import Dataset

    require_prepared(data_dir)
    splits = {}
    for name in names:
        parquet = pq.ParquetFile(data_dir / f"{name}.parquet")
        arrow = scratch_file(f"{name}.arrow")
        with pa.OSFile(str(arrow), "wb") as sink:
            with pa.ipc.new_stream(sink, parquet.schema_arrow) as writer:
                for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
                    writer.write_batch(batch)
        splits[name] = _removed_with(Dataset.from_file(str(arrow)), arrow)
    return splits


# Rows read or encoded at a time: memory for a batch, whatever the split's size.
BATCH_ROWS = 10_000


SCRATCH_PREFIX = "flywheel-data-"


@functools.cache
def _scratch_dir() -> Path:
    """This process's scratch folder in the system's temporary folder (TMPDIR), removed at exit;
    the folders of processes that were killed (no exit handler runs) are removed here."""
    for folder in Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*-*"):
        pid = folder.name.removeprefix(SCRATCH_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
    folder = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def scratch_file(name: str) -> Path:
    """A new path in a folder of this process that is removed when it exits."""
    return _scratch_dir() / f"{uuid.uuid4().hex}-{name}"


def _removed_with(holder: Any, *files: Path) -> Any:
    """`holder`, whose scratch files are deleted once it is garbage, so that a long process (a
    study's trials, each encoding its splits) does not fill the disk. A memory-mapped file stays
    readable after it is deleted, for whatever still maps it."""
    for file in files:
        weakref.finalize(holder, file.unlink, missing_ok=True)
    return holder


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


def prepared_label_names(data_dir: Path = PREPARED_DIR) -> list[str]:
    """The prepared data's class names, from the training split's schema (no rows read)."""
    import pyarrow.parquet as pq
    from datasets import Features

    require_prepared(data_dir)
    schema = pq.read_schema(data_dir / "train.parquet")
    return _class_names(Features.from_arrow_schema(schema))


def label_names(split: Any) -> list[str]:
    """A classification split's class names, in label order ([] for transcripts)."""
    return _class_names(split.features)


def _class_names(features: Any) -> list[str]:
    feature = features["label"]
    return list(feature.names) if hasattr(feature, "names") else []


class Rows:
    """An encoded split held as columns of NumPy arrays: the Trainer's batch of rows by index.

    Read through `datasets` instead (an Arrow query and a formatter for every batch), a batch of
    32 small images took 3 ms to fetch, a fifth of each training step of the image model on CPU;
    from these columns it takes microseconds. Rows are what `datasets` gave: dicts of arrays."""

    @classmethod
    def of(cls, encoded: Any) -> Rows:
        """An encoded dataset's columns in memory: lists of scalars of varying length (token
        ids) as Ragged columns, the others as `datasets` formats them for NumPy (an N-d array
        where every row has one shape)."""
        import pyarrow as pa

        columns, others = {}, []
        for name in encoded.column_names:
            column = encoded.data.column(name)
            if pa.types.is_list(column.type) and not pa.types.is_nested(column.type.value_type):
                columns[name] = Ragged.of(column)
            else:
                others.append(name)
        if others:
            columns |= encoded.select_columns(others).with_format("numpy")[:]
        return cls({name: columns[name] for name in encoded.column_names})

    def __init__(self, columns: dict[str, Any]) -> None:
        self.columns = columns
        self.maps_files_of: Rows | None = None
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
        extended = Rows({**self.columns, name: values})
        extended.maps_files_of = self  # its arrays may be views of this one's mapped files
        return extended


class Ragged:
    """A column of rows of varying length held as Arrow holds it, one flat array and the offsets
    where rows start. An array object for each row (NumPy's object arrays, what `datasets` gives)
    took 7 times the memory: 43 MB against 6 MB for 70,000 package descriptions' token ids."""

    def __init__(self, values: Any, offsets: Any) -> None:
        self.values, self.offsets = values, offsets

    @classmethod
    def of(cls, column: Any) -> Ragged:
        """From a chunked Arrow list column."""
        import pyarrow as pa

        joined = pa.concat_arrays(column.chunks) if column.num_chunks else pa.array([], column.type)
        offsets = joined.offsets.to_numpy()
        return cls(joined.flatten().to_numpy(zero_copy_only=False), offsets - offsets[0])

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: int) -> Any:
        return self.values[self.offsets[index] : self.offsets[index + 1]]


# Encoded splits up to this size are read into memory for the fastest batches (Rows); larger
# ones stay memory-mapped on disk and are read batch by batch.
ROWS_IN_MEMORY_BYTES = 256 * 2**20


def encode(split: Any, processor: Any) -> Any:
    """A split's model inputs and labels, computed once into a memory-mapped Arrow file: as Rows
    in memory when small enough, else the memory-mapped dataset itself (NumPy-formatted)."""
    encoded_file, cast_file = scratch_file("encoded.arrow"), scratch_file("arrays.arrow")
    encoded = split.map(
        task.training_features(processor),
        batched=True,
        remove_columns=split.column_names,
        cache_file_name=str(encoded_file),
        new_fingerprint=f"{split._fingerprint}-encoded",
    )
    # Arrays collate faster than Python lists: N-d columns read back as one array.
    encoded = _as_arrays(encoded, cast_file).with_format("numpy")
    if encoded.data.nbytes > ROWS_IN_MEMORY_BYTES:
        return _removed_with(encoded, encoded_file, cast_file)
    # `map` writes a new table, without an indices mapping: its columns are its rows, in order.
    return _removed_with(Rows.of(encoded), encoded_file, cast_file)


def with_column(rows: Any, name: str, values: list[Any]) -> Any:
    """Encoded rows (Rows or a memory-mapped dataset) with one more column; the new object
    holds the old one, whose scratch files it still maps, so they are not deleted under it."""
    if isinstance(rows, Rows):
        return rows.with_column(name, values)
    extended = rows.add_column(name, values)
    extended.maps_files_of = rows
    return extended


def _as_arrays(encoded: Any, cache_file: Path) -> Any:
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
    if features == encoded.features:
        return encoded
    return encoded.cast(features, cache_file_name=str(cache_file))


def data_hash(data_dir: Path = PREPARED_DIR) -> str:
    """The data version a run was trained on, as DVC names it in dvc.lock and in its cache."""
    from ..tracking.pipeline import directory_md5

    return directory_md5(data_dir)
