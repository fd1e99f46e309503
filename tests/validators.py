"""The offline validators of ops files: each returns the problems it found (empty: clean).

actionlint, zizmor, check-jsonschema, hadolint, validate-pyproject and shellcheck come with the
template's dev dependencies; terraform is the machine's; checkov gets a virtual environment of
its own (its pins clash with validate-pyproject), built once like the shared project environment.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import venv
from collections.abc import Iterable
from pathlib import Path

from filelock import FileLock
from helpers import TEMPLATE_ROOT, uv_install

TOOLS = Path(sys.executable).parent
CHECKOV_PIN = "checkov==3.3.30"
CHECKOV_ENV = TEMPLATE_ROOT / ".cache" / "checkov-env"
# SkyPilot's task loader and the Kubernetes client's models: heavy, and only needed here.
DEPLOY_PINS = ("skypilot==0.14.1", "kubernetes==37.0.2", "pyyaml>=6")
DEPLOY_ENV = TEMPLATE_ROOT / ".cache" / "deploy-env"
# The Kubeflow Pipelines SDK compiles deploy/kfp/pipeline.py: its pins (protobuf<7, requests and
# kubernetes<31) clash with the project's and the deploy checks' environments.
KFP_PINS = ("kfp==2.17.3", "kfp-kubernetes==2.17.3")
KFP_ENV = TEMPLATE_ROOT / ".cache" / "kfp-env"
# What each of dvc.yaml's outputs is called among the compiled pipeline's artifacts.
KFP_ARTIFACTS = {
    "data/prepared": "prepared",
    "data/examples": "examples",
    "models/model": "model",
    "plots/train": "train_plots",
    "plots/evaluate": "evaluate_plots",
    "metrics.json": "metrics",
}


def _run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = subprocess.run(
        command,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PATH": f"{TOOLS}{os.pathsep}{os.environ['PATH']}", **(env or {})},
    )
    return result.returncode, result.stdout + result.stderr


def _problems(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> list[str]:
    code, output = _run(command, cwd, env)
    return [] if code == 0 else [f"{' '.join(command[:2])}: {output.strip()}"]


def workflow_problems(root: Path, workflows: Iterable[Path]) -> list[str]:
    """actionlint (with shellcheck on every `run:`), zizmor offline, and the workflow schema."""
    files = [str(path.relative_to(root)) for path in workflows]
    problems = _problems([str(TOOLS / "jactionlint"), "--no-color", *files], root)
    problems += _problems(
        [str(TOOLS / "zizmor"), "--offline", "--no-progress", "--min-severity=low", *files], root
    )
    for schema in ("vendor.github-workflows", "custom.github-workflows-require-timeout"):
        problems += _problems(
            [str(TOOLS / "check-jsonschema"), "--builtin-schema", schema, *files], root
        )
    return problems


def dependabot_problems(root: Path) -> list[str]:
    """Dependabot's schema, and zizmor's audits of its settings (a cooldown, for one)."""
    config = ".github/dependabot.yml"
    problems = _problems(
        [str(TOOLS / "check-jsonschema"), "--builtin-schema", "vendor.dependabot", config], root
    )
    return problems + _problems(
        [str(TOOLS / "zizmor"), "--offline", "--no-progress", "--min-severity=low", config], root
    )


# The Dev Container specification's schema (tests/schemas/README.md says where it comes from).
DEVCONTAINER_SCHEMA = TEMPLATE_ROOT / "tests" / "schemas" / "devContainer.base.schema.json"


def devcontainer_problems(root: Path) -> list[str]:
    config = ".devcontainer/devcontainer.json"
    return _problems(
        [str(TOOLS / "check-jsonschema"), "--schemafile", str(DEVCONTAINER_SCHEMA), config], root
    )


def dockerfile_problems(root: Path) -> list[str]:
    return _problems(
        [str(TOOLS / "hadolint"), "--no-color", "--failure-threshold", "warning", "Dockerfile"],
        root,
    )


COMPOSE_FILES = ("compose.yaml", "compose.team.yaml")


def compose_problems(root: Path) -> list[str]:
    return _problems(
        [
            str(TOOLS / "check-jsonschema"),
            "--builtin-schema",
            "vendor.compose-spec",
            *COMPOSE_FILES,
        ],
        root,
    )


def pyproject_problems(root: Path) -> list[str]:
    return _problems([str(TOOLS / "validate-pyproject"), "pyproject.toml"], root)


def repo_review_failures(root: Path) -> list[str]:
    """Scientific Python's repo-review: each failed check, with its code and description (the
    checks pyproject.toml's [tool.repo-review] ignores, with reasons, are left out)."""
    code, output = _run([str(TOOLS / "repo-review"), "--format", "json", "."], root)
    try:
        checks = json.loads(output)["checks"]
    except (ValueError, KeyError):
        return [f"repo-review (exit {code}): {output.strip()[-2000:]}"]
    return [
        f"{name}: {check['description']}"
        for name, check in checks.items()
        if check["result"] is False
    ]


def spelling_problems(root: Path) -> list[str]:
    """codespell, with the project's own [tool.codespell] settings."""
    return _problems([str(TOOLS / "codespell"), "."], root)


def dockerignore_allows(root: Path, relpath: str) -> bool:
    """Whether Docker sends `relpath` to the builder, by its .dockerignore rules: the last
    matching pattern wins, and a pattern that matches a parent folder matches its contents."""
    lines = (root / ".dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    parts = relpath.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    allowed = True
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern.removeprefix("!").strip("/")
        regex = re.escape(body).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*")
        regex = regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        if any(re.fullmatch(regex, prefix) for prefix in prefixes):
            allowed = negated
    return allowed


def copy_sources(root: Path) -> list[str]:
    """The build-context sources of every COPY/ADD without --from, as written."""
    sources = []
    for line in (root / "Dockerfile").read_text(encoding="utf-8").splitlines():
        words = line.split()
        if not words or words[0] not in {"COPY", "ADD"}:
            continue
        args = [word for word in words[1:] if not word.startswith("--")]
        if any(word.startswith("--from") for word in words[1:]):
            continue
        sources += args[:-1]
    return sources


def terraform_problems(folder: Path, scratch: Path) -> list[str]:
    """`terraform fmt -check`, and `terraform validate` up to the providers it cannot install."""
    terraform = shutil.which("terraform")
    if terraform is None:
        return ["terraform is not installed"]
    cli_config = scratch / "terraform.rc"
    cli_config.write_text("", encoding="utf-8")
    env = {"TF_CLI_CONFIG_FILE": str(cli_config), "CHECKPOINT_DISABLE": "1"}
    problems = _problems([terraform, "fmt", "-check", "-diff", "-no-color"], folder, env)
    _, output = _run([terraform, "validate", "-json", "-no-color"], folder, env)
    diagnostics = json.loads(output[output.index("{") :])["diagnostics"]
    problems += [
        f"terraform validate: {d['summary']}: {d.get('detail', '')}"
        for d in diagnostics
        if d["summary"] != "Missing required provider"
    ]
    return problems


def tool_env(folder: Path, pins: tuple[str, ...]) -> Path:
    """The `bin` folder of a virtual environment of its own holding `pins`, built once."""
    marker = folder / "installed.txt"
    wanted = "\n".join(pins)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        if not (marker.is_file() and marker.read_text(encoding="utf-8") == wanted):
            shutil.rmtree(folder, ignore_errors=True)
            venv.create(folder)
            uv_install(folder / "bin" / "python", pins)
            marker.write_text(wanted, encoding="utf-8")
    return folder / "bin"


def checkov_bin() -> Path:
    return tool_env(CHECKOV_ENV, (CHECKOV_PIN,)) / "checkov"


class _DeployChecker:
    """tests/deploy_check.py, started once per test worker and handed one file at a time:
    importing SkyPilot takes 1.5 s, which each of a matrix's projects would pay again."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[str] | None = None
        atexit.register(self.close)

    def close(self) -> None:
        if self.process is not None and self.process.stdin is not None:
            self.process.stdin.close()  # its loop ends at the end of its input
            self.process.wait(timeout=30)

    def command(self) -> list[str]:
        python = tool_env(DEPLOY_ENV, DEPLOY_PINS) / "python"
        return [str(python), str(Path(__file__).with_name("deploy_check.py"))]

    def check(self, kind: str, path: Path) -> list[str]:
        if self.process is None or self.process.poll() is not None:
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            self.process.stdin.write(f"{kind}\t{path}\n")
            self.process.stdin.flush()
            answer = self.process.stdout.readline()
        except BrokenPipeError:
            answer = ""
        if answer.startswith("["):
            return json.loads(answer)
        # The process died (or wrote something else): the same check on its own, for its
        # error message, and a new process for the next check.
        self.process.kill()
        self.process.wait()
        result = subprocess.run(
            [*self.command(), kind, str(path)], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            return [f"{kind} check crashed: {result.stderr.strip()[-2000:]}"]
        return [line for line in result.stdout.splitlines() if line.strip()]


_DEPLOY_CHECKER = _DeployChecker()


def deploy_problems(kind: str, path: Path) -> list[str]:
    """`skypilot` or `kubernetes`: the tool's own loader, run by tests/deploy_check.py."""
    return _DEPLOY_CHECKER.check(kind, path)


def checkov_problems(
    folder: Path, var_file: Path | None = None, scanned: Iterable[str] = ()
) -> list[str]:
    """Failed checks and parse errors (checkov exits 0 on a file it cannot parse), and each of
    the `scanned` resources that no check looked at (a `count` that stayed 0)."""
    command = [str(checkov_bin()), "-d", ".", "--framework", "terraform", "--skip-download"]
    command += ["--compact", "-o", "json"]
    if var_file is not None:
        command += ["--var-file", str(var_file)]
    result = subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False)
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        return [f"checkov printed no report: {result.stderr.strip()[-2000:]}"]
    report = report[0] if isinstance(report, list) else report
    results = report.get("results", {})
    problems = [
        f"checkov {check['check_id']} {check['resource']}: {check['check_name']}"
        for check in results.get("failed_checks", [])
    ]
    problems += [f"checkov cannot parse {path}" for path in results.get("parsing_errors", [])]
    if report.get("summary", {}).get("resource_count", 0) == 0:
        problems.append("checkov found no resources: nothing was scanned")
    outcomes = ("passed_checks", "failed_checks", "skipped_checks")
    checked = {check["resource"] for outcome in outcomes for check in results.get(outcome, [])}
    problems += [f"checkov did not scan {name}" for name in scanned if name not in checked]
    return problems


def compile_pipeline(project: Path, output: Path) -> subprocess.CompletedProcess[str]:
    """deploy/kfp/pipeline.py run by the kfp SDK, as the README's uv command runs it."""
    python = tool_env(KFP_ENV, KFP_PINS) / "python"
    command = [str(python), "deploy/kfp/pipeline.py", "--output", str(output)]
    return subprocess.run(command, cwd=project, capture_output=True, text=True, check=False)


def _stage_outputs(stage: dict) -> list[str]:
    entries = [*(stage.get("outs") or []), *(stage.get("metrics") or [])]
    return [entry if isinstance(entry, str) else next(iter(entry)) for entry in entries]


def _resolves(tree: object, key: str) -> bool:
    for part in key.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return False
        tree = tree[part]
    return True


def pipeline_problems(compiled: list[dict], dvc: dict, params_text: str) -> list[str]:
    """A compiled Kubeflow pipeline against dvc.yaml: the same stages in the same order and then
    promote, each step running its stage's command with the run's params (holding every key the
    stage reads), passing on each of its outputs, getting each input from the step that makes
    it, and reading MLFLOW_TRACKING_URI from a Secret."""
    import yaml

    spec, platform = compiled[0], (compiled[1:] or [{}])[0]
    stages = dvc["stages"]
    steps = [*stages, "promote"]
    tasks = spec["root"]["dag"]["tasks"]
    if sorted(tasks) != sorted(steps):
        return [f"the pipeline's steps {sorted(tasks)} are not dvc.yaml's stages and promote"]
    problems = [
        f"{after} does not run after {before}"
        for before, after in itertools.pairwise(steps)
        if before not in tasks[after].get("dependentTasks", [])
    ]
    root = spec["root"]["inputDefinitions"]["parameters"]
    default = root.get("params", {}).get("defaultValue")
    if yaml.safe_load(default or "null") != yaml.safe_load(params_text):
        problems.append("the params argument's default is not params.yaml")
    params = yaml.safe_load(default or "") or {}
    producers = {out: name for name, stage in stages.items() for out in _stage_outputs(stage)}
    executors = spec["deploymentSpec"]["executors"]
    secrets = platform.get("platforms", {}).get("kubernetes", {}).get("deploymentSpec", {})
    # promote, after dvc.yaml's stages: the same program's verb, on the model train made.
    promote = {
        "cmd": stages[steps[0]]["cmd"].rsplit(" ", 1)[0] + " promote",
        "deps": ["models/model"],
    }
    for name in steps:
        stage = stages.get(name, promote)
        task = tasks[name]
        component = spec["components"][task["componentRef"]["name"]]
        label = component["executorLabel"]
        container = executors[label]["container"]
        if stage["cmd"] not in "\n".join(container["command"] + container.get("args", [])):
            problems.append(f"{name} does not run `{stage['cmd']}`")
        given = task.get("inputs", {}).get("parameters", {}).get("params")
        if given != {"componentInputParameter": "params"}:
            problems.append(f"{name} does not get the params argument")
        for key in stage.get("params") or []:
            if not _resolves(params, key):
                problems.append(f"{name} reads {key}, which the params it gets lack")
        outputs = component.get("outputDefinitions", {}).get("artifacts", {})
        for out in _stage_outputs(stage):
            if KFP_ARTIFACTS.get(out) not in outputs:
                problems.append(f"{name} does not pass on {out}")
        artifacts = task.get("inputs", {}).get("artifacts", {})
        for dep in stage.get("deps") or []:
            if dep not in producers:
                continue  # the project's own code, in the image
            source = artifacts.get(KFP_ARTIFACTS.get(dep, ""), {}).get("taskOutputArtifact")
            if source != {
                "outputArtifactKey": KFP_ARTIFACTS.get(dep),
                "producerTask": producers[dep],
            }:
                problems.append(f"{name} does not get {dep} from {producers[dep]}")
        envs = [
            pair["envVar"]
            for secret in secrets.get("executors", {}).get(label, {}).get("secretAsEnv", [])
            for pair in secret.get("keyToEnv", [])
        ]
        if "MLFLOW_TRACKING_URI" not in envs:
            problems.append(f"{name} does not read MLFLOW_TRACKING_URI from a Secret")
    return problems
