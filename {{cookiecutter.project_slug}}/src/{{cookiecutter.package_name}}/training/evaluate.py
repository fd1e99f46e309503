"""`evaluate`: score a trained model on the test split; write metrics.json and the plots."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core import gc_pause
from ..core.paths import EVALUATE_PLOTS_DIR, METRICS_FILE, MODEL_DIR
from ..data.prepare import encode, load_prepared
from ..tasks import task
from . import plots
from .baselines import score_baselines
from .device import trainer_arguments

if TYPE_CHECKING:  # the settings' schema loads the task: only the type is needed here
    from ..core.config import Params


def evaluate_model(
    params: Params,
    processor: Any,
    model: Any,
    test: Any,
    plots_dir: Path = EVALUATE_PLOTS_DIR,
    metrics_file: Path | None = METRICS_FILE,
    baselines: dict[str, dict[str, float]] | None = None,
) -> dict[str, Any]:
    """Metrics of `model` on the `test` split (as prepared: `input` and `label`), written to
    `metrics_file` (unless None); plots to `plots_dir`."""
    from transformers import Trainer

    with tempfile.TemporaryDirectory() as scratch:
        args = trainer_arguments(params.train, scratch, speed_ups=False, disable_tqdm=True)
        evaluator = Trainer(
            model=model,
            args=args,
            data_collator=task.collator(processor),
            preprocess_logits_for_metrics=task.reduce_logits,
        )
        gc_pause.resume()  # the libraries are loaded: collect again, without rescanning them
        prediction = evaluator.predict(encode(test, processor))
    return score(processor, model, prediction, test, plots_dir, metrics_file, baselines)


def score(
    processor: Any,
    model: Any,
    prediction: Any,
    test: Any,
    plots_dir: Path = EVALUATE_PLOTS_DIR,
    metrics_file: Path | None = METRICS_FILE,
    baselines: dict[str, dict[str, float]] | None = None,
) -> dict[str, Any]:
    """Metrics and plots from a Trainer's prediction over the `test` split (as prepared), with
    the baselines' scores on the same split (under `baselines`) where given."""
    metrics: dict[str, Any] = task.report(processor, model, prediction, test, plots_dir)
    # metrics.json names a metric plainly; MLflow adds `test_` (train._log_to_mlflow).
    metrics["loss"] = float(prediction.metrics["test_loss"])
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
    from ..serving.predict import Predictor

    predictor = Predictor(model_dir)
    splits = load_prepared(names=("train", "test"))
    baselines = score_baselines(splits["train"], splits["test"], params)
    return evaluate_model(
        params, predictor.processor, predictor.model, splits["test"], baselines=baselines
    )
