"""Benchmark: how long a bake takes with each engine, and a whole option-matrix bake.

Prints numbers; asserts nothing. Run with `make bench` (or `python scripts/benchmark.py --help`).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from cookiecutter.main import cookiecutter
from rich.progress import Progress

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers import (
    bake_copier,
    combination_id,
    full_matrix,
    pairwise_matrix,
    snapshot_template,
)


def bake_with_cookiecutter(template: Path, answers: dict[str, str], out: Path) -> None:
    cookiecutter(
        str(template),
        no_input=True,
        extra_context=answers,
        output_dir=str(out),
        default_config=True,
    )


def bake_with_copier(template: Path, answers: dict[str, str], out: Path) -> None:
    bake_copier(template, answers, out / "project")


ENGINES = {"cookiecutter": bake_with_cookiecutter, "copier": bake_with_copier}


def timed(func, *args) -> float:
    start = time.perf_counter()
    func(*args)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7, help="bakes per engine for the median")
    parser.add_argument(
        "--matrix", choices=["full", "pairwise", "none"], default="full", help="matrix to bake"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        template = snapshot_template(work / "template")
        print(f"{'engine':<14}{'median bake (s)':>16}{'min (s)':>10}{'max (s)':>10}")
        for engine, bake in ENGINES.items():
            times = [
                timed(bake, template, {}, work / f"{engine}-single-{i}") for i in range(args.repeat)
            ]
            print(
                f"{engine:<14}{statistics.median(times):>16.3f}{min(times):>10.3f}{max(times):>10.3f}"
            )

        if args.matrix == "none":
            return
        matrix = full_matrix() if args.matrix == "full" else pairwise_matrix()
        print(f"\n{args.matrix} matrix: {len(matrix)} combinations")
        with Progress() as progress:
            for engine, bake in ENGINES.items():
                task = progress.add_task(f"{engine:<12}", total=len(matrix))
                start = time.perf_counter()
                for combination in matrix:
                    bake(template, combination, work / engine / combination_id(combination))
                    progress.advance(task)
                elapsed = time.perf_counter() - start
                progress.console.print(
                    f"{engine:<14}{elapsed:>8.1f} s in all, {elapsed / len(matrix):.3f} s a bake"
                )


if __name__ == "__main__":
    main()
