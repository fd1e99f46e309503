"""Benchmark: bake time per engine, a whole option-matrix bake, and time to first tracked model.

Prints numbers; asserts nothing. Run with `make bench` (or `python scripts/benchmark.py --help`).
`--json PATH` also writes them, with the date, the machine and the command, for the docs site's
benchmark page (docs/benchmarks/*.json, rendered by scripts/docs_hooks.py).
"Time to first model" is a bake plus `make train` (prepare, train, evaluate, MLflow logging) in the
shared project environment of the tests (`.cache/project-env`, built on first use).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cookiecutter.main import cookiecutter
from rich.progress import Progress

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers import (
    Baked,
    bake_copier,
    combination_id,
    cookiecutter_json,
    full_matrix,
    pairwise_matrix,
    snapshot_template,
)
from project_env import ensure_project_env, env_with, project_requirements


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


def bake_with_cookiecutter_cli(template: Path, answers: dict[str, str], out: Path) -> None:
    """The command a user types, Python start-up included."""
    cli_bake(template, out)


def bake_with_cookiecutter_cli_no_hooks(template: Path, answers: dict[str, str], out: Path) -> None:
    """The same tree with the hooks skipped: the difference is what the hooks cost."""
    cli_bake(template, out, "--accept-hooks", "no")


def cli_bake(template: Path, out: Path, *options: str) -> None:
    cookiecutter_cli = Path(sys.executable).with_name("cookiecutter")
    command = [str(cookiecutter_cli), "--no-input", "--output-dir", str(out), *options]
    subprocess.run([*command, str(template)], check=True, capture_output=True)


ENGINES = {"cookiecutter": bake_with_cookiecutter, "copier": bake_with_copier}
# One bake of the default project per engine as a user runs it, and without the hooks.
COMMANDS = {
    "cookiecutter CLI": bake_with_cookiecutter_cli,
    "cookiecutter CLI, hooks skipped": bake_with_cookiecutter_cli_no_hooks,
}


BARE_IMPORT = "import torch, transformers, mlflow, datasets"


def timed(func, *args) -> float:
    start = time.perf_counter()
    func(*args)
    return time.perf_counter() - start


def machine() -> dict[str, object]:
    """What the numbers were measured on: they move with the machine and its load."""
    cpu = platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [
            line.split(":", 1)[1].strip()
            for line in cpuinfo.read_text(encoding="utf-8").splitlines()
            if line.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    return {
        "cpu": cpu or "unknown",
        "cores": os.cpu_count(),
        "system": platform.platform(terse=True),
        "python": platform.python_version(),
    }


def first_model(template: Path, work: Path, runs: int, tasks: list[str]) -> dict[str, object]:
    bakes = {}
    # Every task's dependencies, even when only some train: the environment is the one the tests
    # share, and a subset would rebuild it without the others' packages.
    for task in cookiecutter_json()["task"]:
        bake_with_cookiecutter(template, {"task": task}, work / f"deps-{task}")
        bakes[task] = next((work / f"deps-{task}").iterdir())
    bin_dir = ensure_project_env(project_requirements(bakes.values()))
    # The floor no training can go under: the libraries' import, timed in this same run, so the
    # ratio holds on a busy machine.
    imports = statistics.median(
        timed(lambda: subprocess.run([str(bin_dir / "python"), "-c", BARE_IMPORT], check=True))
        for _ in range(runs)
    )
    print(f"\nbare import of torch, transformers, mlflow, datasets: {imports:.1f} s (median)")
    print(f"{'task':<22}{'median bake to first model (s)':>32}{'x import':>10}{'runs (s)':>24}")
    results: dict[str, Any] = {"bare_import_s": round(imports, 2), "tasks": {}}
    for task in tasks:
        times = []
        for run in range(runs):
            out = work / f"first-{task}-{run}"
            start = time.perf_counter()
            bake_with_cookiecutter(template, {"task": task}, out)
            project = Baked(next(out.iterdir()))
            # As a user runs it: all cores for the one training (the tests' environment gives
            # each process one thread, because two test workers train at once).
            env = env_with(bin_dir, project.path)
            del env["OMP_NUM_THREADS"]
            result = project.run("make", "train", env=env)
            times.append(time.perf_counter() - start)
            if result.returncode != 0:
                raise SystemExit(f"make train failed for {task}:\n{result.stderr[-2000:]}")
        shown = ", ".join(f"{t:.1f}" for t in times)
        median = statistics.median(times)
        print(f"{task:<22}{median:>32.1f}{median / imports:>10.1f}{shown:>24}")
        results["tasks"][task] = {
            "runs_s": [round(t, 2) for t in times],
            "median_s": round(median, 2),
            "x_import": round(median / imports, 2),
            # The last run's test scores and baselines, as `train` prints them.
            "test_metrics": test_metrics(result.stdout),
        }
    return results


def test_metrics(stdout: str) -> dict[str, object]:
    prefix = "test metrics: "
    lines = [line for line in stdout.splitlines() if line.startswith(prefix)]
    return json.loads(lines[-1].removeprefix(prefix)) if lines else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7, help="bakes per engine for the median")
    parser.add_argument(
        "--matrix", choices=["full", "pairwise", "none"], default="full", help="matrix to bake"
    )
    parser.add_argument(
        "--first-model", type=int, default=3, metavar="N", help="runs per task (0 skips)"
    )
    parser.add_argument(
        "--task",
        action="append",
        choices=cookiecutter_json()["task"],
        help="first model of this task only (repeatable; default: every task)",
    )
    parser.add_argument(
        "--json", type=Path, metavar="PATH", help="also write the results there (docs/benchmarks/)"
    )
    args = parser.parse_args()
    results: dict[str, Any] = {
        "date": datetime.date.today().isoformat(),
        "command": shlex.join(["python", "scripts/benchmark.py", *sys.argv[1:]]),
        "machine": machine(),
    }
    run(args, results)
    if args.json:  # only a finished run: the docs show whole tables or none
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(f"results: {args.json}")


def run(args: argparse.Namespace, results: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        template = snapshot_template(work / "template")
        print(f"{'engine':<32}{'median bake (s)':>16}{'min (s)':>10}{'max (s)':>10}")
        results["bake"] = bakes = {}
        for engine, bake in {**ENGINES, **COMMANDS}.items():
            folder = engine.replace(" ", "-").replace(",", "")
            times = [
                timed(bake, template, {}, work / f"{folder}-single-{i}") for i in range(args.repeat)
            ]
            median, low, high = statistics.median(times), min(times), max(times)
            print(f"{engine:<32}{median:>16.3f}{low:>10.3f}{high:>10.3f}")
            bakes[engine] = {
                "median_s": round(median, 3),
                "min_s": round(low, 3),
                "max_s": round(high, 3),
            }

        if args.first_model:
            results["first_model"] = first_model(
                template, work, args.first_model, args.task or cookiecutter_json()["task"]
            )
        if args.matrix == "none":
            return
        matrix = full_matrix() if args.matrix == "full" else pairwise_matrix()
        print(f"\n{args.matrix} matrix: {len(matrix)} combinations")
        results["matrix"] = {"kind": args.matrix, "combinations": len(matrix), "engines": {}}
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
                results["matrix"]["engines"][engine] = round(elapsed, 1)


if __name__ == "__main__":
    main()
