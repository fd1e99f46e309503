"""Where the project keeps its inputs and each step's outputs, relative to the project root.

A leaf: modules that only need a path import it from here without loading the settings' schema
(config.py), which loads the task.
"""

from __future__ import annotations

from pathlib import Path

PARAMS_FILE = Path("params.yaml")
PREPARED_DIR = Path("data/prepared")
EXAMPLES_DIR = Path("data/examples")
# Label Studio exports of served inputs, labelled: `prepare` adds them to the training split.
FEEDBACK_DIR = Path("data/feedback")
MODEL_DIR = Path("models/model")
# `export` writes the ONNX graph of models/model here (export.py)...
ONNX_DIR = Path("models/onnx")
# ...or, for text generation, its half-precision checkpoint, the folder vLLM serves.
CHECKPOINT_DIR = Path("models/export")
METRICS_FILE = Path("metrics.json")
BENCH_FILE = Path("bench.json")
# Where `predict` writes what it synthesizes (text to speech).
PREDICTIONS_DIR = Path("predictions")
# `tune` keeps its Optuna study here and writes the best values it found to the second file.
TUNE_DIR = Path("tuning")
BEST_PARAMS_FILE = Path("params.best.yaml")
# `serve` records the traffic it answers here, and `monitor` writes its drift report (monitor.py).
MONITOR_DIR = Path("monitoring")
# `shadow` writes its report of a candidate against the champion here (shadow.py).
SHADOW_DIR = Path("shadow")
# `harvest` writes the kept inputs chosen for labelling here, as Label Studio tasks (harvest.py).
HARVEST_DIR = Path("harvest")
# Held while `prepare`, `train` or `evaluate` runs (runlock.py).
LOCK_FILE = Path(".flywheel.lock")
# `train` draws the loss curve, `evaluate` the test-split plots: one folder per DVC stage.
TRAIN_PLOTS_DIR = Path("plots/train")
EVALUATE_PLOTS_DIR = Path("plots/evaluate")
