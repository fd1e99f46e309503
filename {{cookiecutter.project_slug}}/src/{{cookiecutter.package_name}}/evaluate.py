"""`evaluate`: score a trained model on the test split; write metrics.json and the plots."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from . import plots
from .baselines import score_baselines
from .config import EVALUATE_PLOTS_DIR, METRICS_FILE, MODEL_DIR, Params
from .data import load_prepared
from .tasks import task


def encode(split: Any, processor: Any) -> Any:
    """A split's model inputs and labels, computed once and kept in memory (no cache files)."""
    encoded = split.map(
        task.training_features(processor),
        batched=True,
        remove_columns=split.column_names,
        keep_in_memory=True,
        new_fingerprint=f"{split._fingerprint}-encoded",
    )
    return _as_arrays(encoded).with_format("numpy")  # arrays collate faster than Python lists


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


def evaluate_model(
    params: Params,
    processor: Any,
    model: Any,
    test: Any,
    plots_dir: Path = EVALUATE_PLOTS_DIR,
    metrics_file: Path | None = METRICS_FILE,
    baselines: dict[str, dict[str, float]] | None = None,
) -> dict[str, Any]:
    """Metrics of `model` on the encoded `test` split, written to `metrics_file` (unless None);
    plots to `plots_dir`."""
    import torch
    from transformers import Trainer, TrainingArguments

    from .device import accelerator_available

    with tempfile.TemporaryDirectory() as scratch:
        args = TrainingArguments(
            output_dir=scratch,
            per_device_eval_batch_size=params.train.batch_size,
            report_to="none",
            remove_unused_columns=False,
            disable_tqdm=True,
            use_cpu=not accelerator_available(),
            dataloader_pin_memory=torch.cuda.is_available(),
        )
        evaluator = Trainer(model=model, args=args, data_collator=task.collator(processor))
        prediction = evaluator.predict(test)
    return score(processor, model, prediction, plots_dir, metrics_file, baselines)


def score(
    processor: Any,
    model: Any,
    prediction: Any,
    plots_dir: Path = EVALUATE_PLOTS_DIR,
    metrics_file: Path | None = METRICS_FILE,
    baselines: dict[str, dict[str, float]] | None = None,
) -> dict[str, Any]:
    """Metrics and plots from a Trainer's prediction over the test split, with the baselines'
    scores on the same split (under `baselines`) where given."""
    metrics: dict[str, Any] = task.report(processor, model, prediction, plots_dir)
    metrics["test_loss"] = float(prediction.metrics["test_loss"])
    metrics = {key: round(value, 6) for key, value in sorted(metrics.items())}
    if baselines is not None:
        metrics["baselines"] = baselines
        plots.baselines(
            task.JUDGING.primary_metric, metrics[task.JUDGING.primary_metric], baselines, plots_dir
        )
    if metrics_file is not None:
        metrics_file.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    return metrics


def evaluate(params: Params, model_dir: Path = MODEL_DIR) -> dict[str, Any]:
    from .predict import Predictor

    predictor = Predictor(model_dir)
    splits = load_prepared()
    test = encode(splits["test"], predictor.processor)
    baselines = score_baselines(splits["train"], splits["test"])
    return evaluate_model(params, predictor.processor, predictor.model, test, baselines=baselines)
