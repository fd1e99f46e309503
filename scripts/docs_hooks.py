"""MkDocs hooks (mkdocs.yml `hooks:`): pages built from files instead of typed by hand.

- `changelog.md` is CHANGELOG.md at the repository's root, where GitHub and Keep a Changelog
  expect it.
- The marker `<!-- benchmark-tables -->` in a page becomes the tables of every benchmark result
  in docs/benchmarks/*.json (written by `scripts/benchmark.py --json`), newest first, each headed
  by its date, machine and command.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
MARKER = "<!-- benchmark-tables -->"


def on_files(files: Files, config: Any) -> Files:
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    files.append(File.generated(config, "changelog.md", content=changelog))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    if MARKER not in markdown:
        return markdown
    results = sorted(Path(config["docs_dir"], "benchmarks").glob("*.json"), reverse=True)
    if not results:
        raise ValueError(f"{page.file.src_uri}: no docs/benchmarks/*.json to render")
    tables = [benchmark_tables(json.loads(path.read_text(encoding="utf-8"))) for path in results]
    return markdown.replace(MARKER, "\n\n".join(tables))


def table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def benchmark_tables(result: dict[str, Any]) -> str:
    machine = result["machine"]
    parts = [
        f"### {result['date']}",
        f"{machine['cores']} cores ({machine['cpu']}), {machine['system']}, Python "
        f"{machine['python']}; `{result['command']}`",
    ]
    if bakes := result.get("bake"):
        rows = [
            [engine, f"{b['median_s']:.3f} s", f"{b['min_s']:.3f} s", f"{b['max_s']:.3f} s"]
            for engine, b in bakes.items()
        ]
        parts.append(table(["one bake of the default project", "median", "min", "max"], rows))
    if first := result.get("first_model"):
        parts.append(
            f"Bake to first tracked model (`make train`: prepare, train, evaluate, log to a new "
            f"MLflow store), against the bare import of torch, transformers, mlflow and datasets "
            f"in the same run ({first['bare_import_s']:.1f} s):"
        )
        rows = [
            [
                task,
                f"{t['median_s']:.1f} s",
                f"{t['x_import']:.1f}x",
                ", ".join(map(str, t["runs_s"])),
            ]
            for task, t in first["tasks"].items()
        ]
        parts.append(table(["task", "median", "x import", "runs (s)"], rows))
        parts.append("The same runs' test scores on the embedded data, with the baselines:")
        parts.append(table(["task", "model", "baselines"], score_rows(first["tasks"])))
    if scale := result.get("data_scale"):
        parts.append(
            f"The text classification project on N rows of text (CSV), training capped at "
            f"{scale['steps']} steps (`--data-rows`): each command's time, its peak resident "
            f"memory (which counts pages of memory-mapped files the system can drop again) and "
            f"its peak anonymous memory (which it cannot):"
        )
        rows = [
            [f"{int(size):,}"]
            + [
                f"{m[f'{verb}_s']:.1f} s / {m[f'{verb}_rss_mb']} MB / {m[f'{verb}_anon_mb']} MB"
                for verb in ("prepare", "train")
            ]
            for size, m in scale["rows"].items()
        ]
        header = ["rows", "prepare: time / peak RSS / anonymous", "train: the same"]
        parts.append(table(header, rows))
    if matrix := result.get("matrix"):
        rows = [
            [engine, f"{seconds:.1f} s", f"{seconds / matrix['combinations']:.3f} s"]
            for engine, seconds in matrix["engines"].items()
        ]
        header = [f"{matrix['kind']} matrix ({matrix['combinations']} combinations)", "in all"]
        parts.append(table([*header, "a bake"], rows))
    return "\n\n".join(parts)


def scalars(scores: dict[str, Any]) -> str:
    return ", ".join(
        f"{name} {value:.3g}" for name, value in scores.items() if isinstance(value, int | float)
    )


def score_rows(tasks: dict[str, Any]) -> list[list[object]]:
    """Every scalar test metric of the model, and each baseline's, as `train` printed them."""
    rows: list[list[object]] = []
    for task, timing in tasks.items():
        metrics = dict(timing["test_metrics"])
        baselines = metrics.pop("baselines", {})
        model = scalars(metrics)
        others = "; ".join(f"{name}: {scalars(scores)}" for name, scores in baselines.items())
        rows.append([task, model, others or "-"])
    return rows
