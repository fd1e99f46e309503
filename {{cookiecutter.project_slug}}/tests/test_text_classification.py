"""The text-classification task's own data layout, read as the README documents it."""

from pathlib import Path

from {{ cookiecutter.package_name }}.core.config import load_params
from {{ cookiecutter.package_name }}.data import prepare as preparing
from {{ cookiecutter.package_name }}.data.prepare import Rows, load_prepared, prepare
from {{ cookiecutter.package_name }}.training.train import build_trainer


def test_a_local_csv_source_is_loaded_and_its_labels_encoded(tmp_path: Path) -> None:
    rows = ["review,sentiment"] + [
        f"{word} item number {i},{label}"
        for i in range(40)
        for word, label in (("great", "good"), ("awful", "bad"))
    ]
    source = tmp_path / "reviews.csv"
    source.write_text("\n".join(rows) + "\n", encoding="utf-8")
    params = load_params()
    data = params.data.model_copy(
        update={"source": str(source), "input_column": "review", "target_column": "sentiment"}
    )
    sizes = prepare(params.model_copy(update={"data": data}), tmp_path / "prepared")
    assert sum(sizes.values()) == 80
    train = load_prepared(tmp_path / "prepared")["train"]
    assert sorted(train.features["label"].names) == ["bad", "good"]


def test_a_split_too_big_for_memory_trains_from_its_mapped_file_up_to_max_steps(
    trained, tmp_path: Path, monkeypatch
) -> None:
    """Every encoded split stays a memory-mapped file (as beyond 256 MB), the Trainer reads its
    batches from there, and train.max_steps ends training mid-epoch, validated and saved."""
    monkeypatch.setattr(preparing, "ROWS_IN_MEMORY_BYTES", 0)
    params = trained.params
    capped = params.model_copy(update={"train": params.train.model_copy(update={"max_steps": 3})})
    trainer, _, features = build_trainer(capped, load_prepared(), str(tmp_path))
    assert not any(isinstance(split, Rows) for split in features.values())
    trainer.train()
    assert trainer.state.global_step == 3
    assert 0 < trainer.state.epoch < 1
    assert any("eval_loss" in entry for entry in trainer.state.log_history)
    assert trainer.state.best_model_checkpoint is not None
