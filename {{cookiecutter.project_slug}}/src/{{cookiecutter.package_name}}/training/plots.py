"""Pictures people would rather see than read, saved as PNG next to the data they are drawn from."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _pyplot():
    # Imported on use: matplotlib costs start-up time every verb would otherwise pay.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def loss_curve(history: Sequence[dict], plots_dir: Path) -> list[Path]:
    """Training and validation loss per epoch: `loss.csv` (for DVC) and `loss_curve.png`."""
    rows: dict[float, dict[str, float]] = {}
    for entry in history:
        epoch = round(float(entry.get("epoch", 0)), 4)
        if "loss" in entry:
            rows.setdefault(epoch, {})["train_loss"] = float(entry["loss"])
        if "eval_loss" in entry:
            rows.setdefault(epoch, {})["eval_loss"] = float(entry["eval_loss"])
    plots_dir.mkdir(parents=True, exist_ok=True)
    table = plots_dir / "loss.csv"
    with table.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(["epoch", "train_loss", "eval_loss"])
        for epoch in sorted(rows):
            writer.writerow(
                [epoch, rows[epoch].get("train_loss", ""), rows[epoch].get("eval_loss", "")]
            )

    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(6, 4))
    for key, label in (("train_loss", "training"), ("eval_loss", "validation")):
        points = [(epoch, values[key]) for epoch, values in sorted(rows.items()) if key in values]
        if points:
            axes.plot(*zip(*points, strict=True), marker="o", label=label)
    axes.set(xlabel="epoch", ylabel="loss", title="Loss per epoch")
    axes.legend()
    figure.tight_layout()
    image = plots_dir / "loss_curve.png"
    figure.savefig(image, dpi=100)
    plt.close(figure)
    return [table, image]


def confusion_matrix(
    labels: Sequence[str], actual: Sequence[int], predicted: Sequence[int], plots_dir: Path
) -> list[Path]:
    """Confusion matrix of a classifier: `predictions.csv` (for DVC) and `confusion_matrix.png`."""
    from sklearn.metrics import ConfusionMatrixDisplay

    plots_dir.mkdir(parents=True, exist_ok=True)
    table = plots_dir / "predictions.csv"
    with table.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(["actual", "predicted"])
        writer.writerows((labels[a], labels[p]) for a, p in zip(actual, predicted, strict=True))

    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(1.2 * len(labels) + 3, 1.2 * len(labels) + 2.5))
    ConfusionMatrixDisplay.from_predictions(
        actual,
        predicted,
        labels=list(range(len(labels))),
        display_labels=list(labels),
        ax=axes,
        colorbar=False,
        xticks_rotation=45,
    )
    axes.set_title("Confusion matrix (test split)")
    figure.tight_layout()
    image = plots_dir / "confusion_matrix.png"
    figure.savefig(image, dpi=100)
    plt.close(figure)
    return [table, image]


def baselines(
    metric: str, model: float, scores: dict[str, dict[str, float]], plots_dir: Path
) -> list[Path]:
    """The model beside its baselines on the primary metric: `baselines.csv` (for DVC) and
    `baselines.png`."""
    rows = [("model", model)] + [
        (f"baseline: {name}", values[metric]) for name, values in scores.items()
    ]
    plots_dir.mkdir(parents=True, exist_ok=True)
    table = plots_dir / "baselines.csv"
    with table.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(["name", metric])
        writer.writerows(rows)

    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(6, 1 + 0.6 * len(rows)))
    names, values = zip(*rows, strict=True)
    bars = axes.barh(names, values, color=["tab:blue"] + ["tab:gray"] * (len(rows) - 1))
    axes.bar_label(bars, fmt="%.3f", padding=3)
    axes.invert_yaxis()
    axes.set(xlabel=f"{metric} (test split)", title="Model and baselines")
    axes.set_xlim(0, max(1.0, max(values)) * 1.15)
    figure.tight_layout()
    image = plots_dir / "baselines.png"
    figure.savefig(image, dpi=100)
    plt.close(figure)
    return [table, image]


def spectrograms(
    pairs: Sequence[tuple[Any, Any]], titles: Sequence[str], image: Path
) -> list[Path]:
    """Reference and synthesized log-mel spectrograms side by side, one row per utterance."""
    plt = _pyplot()
    rows = max(1, len(pairs))
    figure, axes = plt.subplots(rows, 2, figsize=(10, 2.2 * rows), squeeze=False)
    for row, ((reference, synthesized), title) in enumerate(zip(pairs, titles, strict=True)):
        for column, (frames, kind) in enumerate(
            ((reference, "recorded"), (synthesized, "synthesized"))
        ):
            axes[row][column].imshow(frames.T, origin="lower", aspect="auto", cmap="magma")
            axes[row][column].set_title(f"{kind}: {title!r}", fontsize=9)
            axes[row][column].set(xlabel="frame", ylabel="mel band")
    figure.tight_layout()
    image.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(image, dpi=100)
    plt.close(figure)
    return [image]
