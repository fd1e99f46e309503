"""`card`: the model card of a training run, in the Hugging Face format."""

import mlflow
import pytest
from huggingface_hub import ModelCard

from {{ cookiecutter.package_name }}.cli import entry_point
from {{ cookiecutter.package_name }}.core.errors import FlywheelError
from {{ cookiecutter.package_name }}.core.paths import MODEL_DIR
from {{ cookiecutter.package_name }}.lifecycle.card import USER_SECTIONS, write_card
from {{ cookiecutter.package_name }}.tasks import task
from {{ cookiecutter.package_name }}.tracking.runs import trained_run_id


def test_the_card_holds_the_run_and_keeps_what_people_wrote(trained, tmp_path) -> None:
    run_id = trained.result.run_id
    assert trained_run_id(MODEL_DIR) == run_id
    path = write_card(run_id, tmp_path / "MODEL_CARD.md")
    card = ModelCard.load(path)  # what the Hub would parse
    primary = task.JUDGING.primary_metric
    result = card.data.eval_results[0]
    assert (result.metric_type, result.metric_value) == (
        primary,
        pytest.approx(trained.result.metrics[primary]),
    )
    assert card.data.pipeline_tag and card.data.license
    text = path.read_text(encoding="utf-8")
    assert run_id in text and f"make reproduce RUN={run_id}" in text
    assert "| train.epochs |" in text and f"| {primary} |" in text
    for placeholder in USER_SECTIONS.values():
        assert placeholder in text
    written = text.replace(USER_SECTIONS["Intended use"], "Sorting our support tickets.")
    path.write_text(written, encoding="utf-8")
    again = write_card(run_id, path).read_text(encoding="utf-8")
    assert "Sorting our support tickets." in again
    assert USER_SECTIONS["Limitations"] in again
    logged = mlflow.MlflowClient().list_artifacts(run_id)
    assert "MODEL_CARD.md" in {artifact.path for artifact in logged}


def test_an_unknown_run_is_one_line(capsys) -> None:
    with pytest.raises(FlywheelError, match="run nope is not in the MLflow store"):
        write_card("nope")
    assert entry_point(["card", "--run", "nope"]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: run nope") and "\n" not in error
