"""`card`: a trained model's card in the Hugging Face format, written from its MLflow run.

What the run knows goes in: the task, the data's source and version, every parameter, the test
metrics beside the baselines, the lineage, and the command that makes the run again. "Intended
use" and "Limitations" are for people to write; writing the card again keeps what they wrote. The
card is logged to the run as `MODEL_CARD.md`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..core.project import LICENSE, MODALITY, TASK
from ..tasks import task
from ..tracking.runs import EXPERIMENT, get_run

CARD_FILE = Path("MODEL_CARD.md")
# The sections a person fills in, with what they are for until then.
USER_SECTIONS = {
    "Intended use": "_To write: who should use this model, for what, and what it is not for._",
    "Limitations": (
        "_To write: inputs it handles badly, data it never saw, people or conditions it may "
        "serve worse, and what to check before relying on it._"
    ),
}
# Hugging Face's license identifiers and pipeline tags for the template's choices.
HF_LICENSES = {"MIT": "mit", "Apache-2.0": "apache-2.0", "BSD-3-Clause": "bsd-3-clause"}
PIPELINE_TAGS = {"speech-recognition": "automatic-speech-recognition"}


def _user_sections(previous: str) -> dict[str, str]:
    """What people wrote in the user sections of an earlier card (placeholders for the rest)."""
    kept = dict(USER_SECTIONS)
    for title in USER_SECTIONS:
        found = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", previous, re.M | re.S)
        if found and found.group(1).strip():
            kept[title] = found.group(1).strip()
    return kept


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _scores(metrics: dict[str, float]) -> tuple[list[str], list[list[Any]]]:
    """Test metrics, one row each: the model's score, then each baseline's."""
    baselines = sorted(task.JUDGING.baselines)
    names = sorted(key.removeprefix("test_") for key in metrics if key.startswith("test_"))
    rows = [
        [name, metrics[f"test_{name}"]]
        + [metrics.get(f"baseline_{baseline}_{name}", "-") for baseline in baselines]
        for name in names
    ]
    return ["test metric", "model", *baselines], rows


def card_text(run: Any, previous: str = "") -> str:
    """The card of `run` (an MLflow run), keeping the user sections of `previous`."""
    from huggingface_hub import EvalResult, ModelCardData

    params, metrics, tags = run.data.params, run.data.metrics, run.data.tags
    pipeline_tag = PIPELINE_TAGS.get(TASK, TASK)
    primary = task.JUDGING.primary_metric
    data = ModelCardData(
        model_name=EXPERIMENT,
        license=HF_LICENSES.get(LICENSE, "other"),
        library_name="transformers",
        pipeline_tag=pipeline_tag,
        tags=[TASK, MODALITY, "ml-flywheel"],
        eval_results=[
            EvalResult(
                task_type=pipeline_tag,
                dataset_type=f"{EXPERIMENT}-test",
                dataset_name=f"{EXPERIMENT} test split ({params.get('data.source', '?')})",
                metric_type=primary,
                metric_value=metrics[f"test_{primary}"],
            )
        ]
        if f"test_{primary}" in metrics
        else None,
    )
    datasets = [
        [entry.dataset.name, entry.dataset.digest]
        for entry in sorted(run.inputs.dataset_inputs, key=lambda entry: entry.dataset.name)
    ]
    lineage = [
        ["MLflow run", run.info.run_id],
        ["git commit", tags.get("lineage.git_commit", "-")],
        ["uncommitted changes", tags.get("lineage.git_dirty", "-")],
        ["prepared data (DVC)", tags.get("lineage.data_hash", "-")],
        ["training rows labelled from served inputs", tags.get("lineage.feedback_rows", "-")],
        [tags.get("lineage.dependency_file", "dependencies"), tags.get("lineage.dependency_hash")],
        [
            "python / torch / transformers",
            " / ".join(
                tags.get(f"lineage.{name}", "-") for name in ("python", "torch", "transformers")
            ),
        ],
    ]
    user = _user_sections(previous)
    body = f"""
# {EXPERIMENT}

A {TASK} model ({MODALITY}) trained by this project's `make train`; everything below except the
two sections to write comes from MLflow run `{run.info.run_id}` ({run.info.run_name}).

## Intended use
{user["Intended use"]}

## Limitations
{user["Limitations"]}

## Training data
Source (`data.source` in params.yaml): `{params.get("data.source", "-")}`. Prepared splits, with
the MD5 that DVC records for each file:

{_table(["split", "MD5"], datasets)}

## Evaluation
On the test split, beside the baselines ({task.JUDGING.baseline_to_beat} is the one to beat;
{"higher" if task.JUDGING.greater_is_better else "lower"} {primary} is better):

{_table(*_scores(metrics))}

## Training parameters
{_table(["parameter", "value"], [[key, value] for key, value in sorted(params.items())])}

## Lineage
{_table(["what", "value"], lineage)}

Made again from its commit and data, metrics compared: `make reproduce RUN={run.info.run_id}`.
"""
    return f"---\n{data.to_yaml()}\n---\n{body}"


def write_card(run_id: str, path: Path = CARD_FILE) -> Path:
    """Write the card of `run_id` to `path` (keeping its user sections) and log it to the run."""
    import mlflow

    run = get_run(run_id)
    previous = path.read_text(encoding="utf-8") if path.is_file() else ""
    path.write_text(card_text(run, previous), encoding="utf-8")
    mlflow.MlflowClient().log_artifact(run_id, str(path))
    return path
