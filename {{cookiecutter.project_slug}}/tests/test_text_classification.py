"""The text-classification task's own data layout, read as the README documents it."""

from pathlib import Path

from {{ cookiecutter.package_name }}.core.config import load_params
from {{ cookiecutter.package_name }}.data.prepare import load_prepared, prepare


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
