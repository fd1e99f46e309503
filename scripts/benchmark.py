"""Benchmark: bake time per engine, a whole option-matrix bake, and time to first tracked model.

Prints numbers; asserts nothing. Run with `make bench` (or `python scripts/benchmark.py --help`).
`--json PATH` also writes them, with the date, the machine and the command, for the docs site's
benchmark page (docs/benchmarks/*.json, rendered by scripts/docs_hooks.py).
"Time to first model" is a bake plus `make train` (prepare, train, evaluate, MLflow logging) in the
shared project environment of the tests (`.cache/project-env`, built on first use).
"""

from __future__ import annotations

import argparse
import contextlib
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
    with_params,
)
from project_env import ensure_project_env, env_with, project_requirements
from real_data import package_descriptions


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


def shared_project_env(template: Path, work: Path) -> Path:
    """The tests' project environment, with every task's dependencies even when only some train:
    a subset would rebuild it without the others' packages."""
    bakes = []
    for task in cookiecutter_json()["task"]:
        bake_with_cookiecutter(template, {"task": task}, work / f"deps-{task}")
        bakes.append(next((work / f"deps-{task}").iterdir()))
    return ensure_project_env(project_requirements(bakes))


def first_model(template: Path, work: Path, runs: int, tasks: list[str]) -> dict[str, object]:
    bin_dir = shared_project_env(template, work)
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


def measured(command: list[str], cwd: Path, env: dict[str, str]) -> dict[str, float | None]:
    """Seconds and peak memory (MB) of one command, its own process alone: the peak resident set
    (ru_maxrss), which counts the pages of memory-mapped files the system may drop again, and,
    on Linux, the peak of the memory it cannot drop (RssAnon, sampled every 20 ms)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL)
    status_file = Path(f"/proc/{process.pid}/status")
    anonymous = 0
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        with contextlib.suppress(OSError):
            for line in status_file.read_text(encoding="utf-8").splitlines():
                if line.startswith("RssAnon:"):
                    anonymous = max(anonymous, int(line.split()[1]))
        time.sleep(0.02)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{shlex.join(command)} failed ({process.returncode}) in {cwd}")
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: kB on Linux, bytes on macOS
    return {
        "s": seconds,
        "rss_mb": usage.ru_maxrss * scale / 2**20,
        # No /proc (macOS): not measured, rather than a 0 the docs would show.
        "anon_mb": anonymous / 1024 if Path("/proc/self/status").is_file() else None,
    }


def rounded(key: str, value: float | None) -> float | None:
    """Seconds to a tenth, megabytes whole; None (not measured) as it is."""
    if value is None:
        return None
    return round(value, 1) if key == "s" else round(value)


def data_scale(template: Path, work: Path, sizes: list[int], steps: int) -> dict[str, object]:
    """`prepare` and `train` of the text classification project on CSV files of these many rows
    (Debian's package descriptions, repeated), training capped at `steps` steps: time and peak
    memory of each, to show how they grow with the data."""
    bin_dir = shared_project_env(template, work)
    out = work / "data-scale"
    bake_with_cookiecutter(template, {"task": "text-classification"}, out)
    project = next(out.iterdir())
    package = project.name  # the default answers' package name
    env = env_with(bin_dir, project)
    del env["OMP_NUM_THREADS"]  # all cores, as a user runs it
    rows = package_descriptions(work / "descriptions.csv").read_text(encoding="utf-8").splitlines()
    header, examples = rows[0], rows[1:]
    columns = ("prepare s", "peak RSS", "anonymous", "train s", "peak RSS", "anonymous")
    print("\n" + f"{'rows':>10}" + "".join(f"{column:>12}" for column in columns) + "  (MB)")
    results: dict[str, Any] = {"steps": steps, "rows": {}}
    (project / "data").mkdir(exist_ok=True)
    for size in sizes:
        data = project / "data" / f"rows-{size}.csv"
        with data.open("w", encoding="utf-8") as handle:
            handle.write(header + "\n")
            for index in range(size):
                handle.write(examples[index % len(examples)] + "\n")
        params = project / f"params-{size}.yaml"
        text = with_params(
            (project / "params.yaml").read_text(encoding="utf-8"),
            {"source": data.relative_to(project).as_posix(), "epochs": 1, "max_steps": steps},
        )
        params.write_text(text, encoding="utf-8")
        python = [str(bin_dir / "python"), "-m", package]
        by_verb = {
            verb: measured([*python, verb, "--params", str(params)], project, env)
            for verb in ("prepare", "train")
        }
        cells = [
            f"{m['s'] or 0:>12.1f}{m['rss_mb'] or 0:>12.0f}{m['anon_mb'] or 0:>12.0f}"
            for m in by_verb.values()
        ]
        print(f"{size:>10}" + "".join(cells))
        results["rows"][str(size)] = {
            f"{verb}_{key}": rounded(key, value)
            for verb, m in by_verb.items()
            for key, value in m.items()
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
        "--data-rows",
        type=int,
        action="append",
        metavar="N",
        help="prepare and train the text project on N rows (repeatable: 10000, 100000, ...)",
    )
    parser.add_argument(
        "--data-steps", type=int, default=50, metavar="S", help="training steps at every size"
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
        if args.data_rows:
            results["data_scale"] = data_scale(template, work, args.data_rows, args.data_steps)
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
