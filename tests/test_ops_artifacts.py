"""The files `use_docker`, `ci` and `cloud` select pass real linters, for every combination.

Identical files (the Terraform of one cloud in two combinations, say) are validated once per
worker: the check is of the content, and the same content cannot pass once and fail later.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from helpers import Baked
from validators import (
    COMPOSE_FILES,
    checkov_bin,
    checkov_problems,
    compile_pipeline,
    compose_problems,
    copy_sources,
    dependabot_problems,
    deploy_problems,
    devcontainer_problems,
    dockerfile_problems,
    dockerignore_allows,
    pipeline_problems,
    pyproject_problems,
    repo_review_failures,
    spelling_problems,
    terraform_problems,
    workflow_problems,
)

_VALIDATED: dict[str, list[str]] = {}
# What a build context must never carry, whatever the project holds.
HEAVY = [
    ".git/HEAD",
    ".venv/bin/python",
    ".dvc/cache/files/md5/ab/cdef",
    "data/prepared/train.parquet",
    "models/model/model.safetensors",
    "mlruns/0/meta.yaml",
    "mlartifacts/1/model.pkl",
    "mlflow.db",
    "src/pkg/__pycache__/cli.cpython-311.pyc",
]
# The optional pieces on (the GPU VM, the tracking database), with the values they need, to scan
# them as a user would create them.
OPTIONAL_PIECES = {
    "aws": 'gpu_instance_enabled = true\ngpu_ami_id = "ami-0123456789abcdef0"\n'
    'tracking_db_enabled = true\ntracking_db_vpc_id = "vpc-0123456789abcdef0"\n'
    'tracking_db_subnet_ids = ["subnet-0123456789abcdef0", "subnet-0fedcba987654321f"]\n'
    'tracking_db_allowed_cidrs = ["10.0.0.0/16"]\n',
    "gcp": 'gpu_instance_enabled = true\nproject_id = "my-project"\n'
    'tracking_db_enabled = true\ntracking_db_password = "a-test-password"\n',
    "azure": 'gpu_instance_enabled = true\nadmin_ssh_public_key = "ssh-ed25519 AAAAC3Nz test"\n'
    'tracking_db_enabled = true\ntracking_db_password = "a-test-password"\n',
}
# ...and what they create, which the scan must have looked at.
OPTIONAL_RESOURCES = {
    "aws": ("aws_instance.trainer[0]", "aws_db_instance.tracking[0]"),
    "gcp": ("google_compute_instance.trainer[0]", "google_sql_database_instance.tracking[0]"),
    "azure": (
        "azurerm_linux_virtual_machine.trainer[0]",
        "azurerm_postgresql_flexible_server.tracking[0]",
    ),
}

# Checkov's Kubernetes policies, less what the template cannot decide: the image's digest and pull
# policy (it names the version tag docker.yml pushes), the namespace (`kubectl -n`), a
# NetworkPolicy (the cluster's), a CPU limit (it throttles inference; the request sizes the pods).
KUBERNETES_SKIPS = ("CKV_K8S_43", "CKV_K8S_15", "CKV_K8S_21", "CKV2_K8S_6", "CKV_K8S_11")


def matched(pattern: str, text: str, flags: int = 0) -> str:
    """The first group of `pattern`'s first match in `text` (failing the test where none)."""
    found = re.search(pattern, text, flags)
    assert found, f"{pattern!r} not found"
    return found.group(1)


def kubernetes_policy_problems(path: Path) -> list[str]:
    """Checkov's failed Kubernetes checks of one manifest (offline; the Terraform scan's env)."""
    command = [str(checkov_bin()), "-f", path.name, "--framework", "kubernetes", "--skip-download"]
    command += ["--skip-check", ",".join(KUBERNETES_SKIPS), "--quiet", "--compact", "-o", "json"]
    result = subprocess.run(command, cwd=path.parent, capture_output=True, text=True, check=False)
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        return [f"checkov printed no report: {result.stderr.strip()[-2000:]}"]
    report = report[0] if isinstance(report, list) else report
    if report.get("summary", {}).get("resource_count", 0) == 0:
        return ["checkov found no Kubernetes resources: nothing was scanned"]
    return [
        f"checkov {check['check_id']} {check['resource']}: {check['check_name']}"
        for check in report.get("results", {}).get("failed_checks", [])
    ]


def once(label: str, project: Path, paths: list[str], check: Callable[[], list[str]]) -> list[str]:
    """`check()`'s problems, computed once per worker for the same label and file contents."""
    digest = hashlib.sha256(label.encode())
    for path in sorted(paths):
        digest.update(path.encode() + (project / path).read_bytes())
    key = digest.hexdigest()
    if key not in _VALIDATED:
        _VALIDATED[key] = check()
    return _VALIDATED[key]


def test_workflows_pass_actionlint_zizmor_and_the_schema(
    pair: tuple[Baked, Baked], combination: dict[str, str]
) -> None:
    project = pair[0].path
    workflows = sorted((project / ".github" / "workflows").glob("*.yml"))
    if combination["ci"] == "none":
        assert workflows == []
        return
    paths = [str(path.relative_to(project)) for path in workflows]
    assert once("workflows", project, paths, lambda: workflow_problems(project, workflows)) == []
    dependabot = [".github/dependabot.yml"]
    assert once("dependabot", project, dependabot, lambda: dependabot_problems(project)) == []


def test_the_devcontainer_passes_its_schema_and_sets_the_project_up(
    pair: tuple[Baked, Baked], combination: dict[str, str]
) -> None:
    """Every project opens in a Dev Container (VS Code, Codespaces) of its Python version, where
    `make setup` runs once the container is created."""
    project = pair[0].path
    paths = [".devcontainer/devcontainer.json"]
    assert once("devcontainer", project, paths, lambda: devcontainer_problems(project)) == []
    config = json.loads((project / paths[0]).read_text(encoding="utf-8"))
    assert config["postCreateCommand"] == "make setup"
    assert config["image"].endswith(f":1-{combination['python_version']}-bookworm"), config["image"]


def test_workflows_pin_actions_to_commits_and_grant_least_privilege(
    pair: tuple[Baked, Baked], combination: dict[str, str]
) -> None:
    project = pair[0].path
    for workflow in (project / ".github" / "workflows").glob("*.yml"):
        text = workflow.read_text(encoding="utf-8")
        for action in re.findall(r"uses:\s*(\S+)", text):
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", action), action
        parsed = yaml.safe_load(text)
        assert parsed["permissions"] in ({}, {"contents": "read"}), workflow.name
        # No expression inside a shell script: untrusted input reaches scripts through env.
        for job in parsed["jobs"].values():
            for step in job["steps"]:
                assert "${{" not in step.get("run", ""), (workflow.name, step)


def readme_text(project: Path) -> str:
    return " ".join((project / "README.md").read_text(encoding="utf-8").split())


def test_dockerfile_passes_hadolint_and_copies_only_what_the_context_holds(
    pair: tuple[Baked, Baked], combination: dict[str, str]
) -> None:
    project = pair[0].path
    if combination["use_docker"] == "no":
        assert not (project / "Dockerfile").exists()
        return
    assert once("hadolint", project, ["Dockerfile"], lambda: dockerfile_problems(project)) == []
    assert once("compose", project, list(COMPOSE_FILES), lambda: compose_problems(project)) == []
    sources = copy_sources(project)
    assert sources, "the Dockerfile copies nothing from the build context"
    for source in sources:
        # uv.lock is the project's, written by its first `make setup`, not baked.
        made_by_setup = source == "uv.lock" and "writes `uv.lock`" in readme_text(project)
        assert made_by_setup or (project / source).exists(), f"COPY {source}: not in the project"
        assert dockerignore_allows(project, source), f"COPY {source}: excluded by .dockerignore"
    for heavy in HEAVY:
        assert not dockerignore_allows(project, heavy), f"{heavy} would enter the build context"
    dockerfile = (project / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^USER 10001", dockerfile, re.M), "the image must not run as root"
    assert "HEALTHCHECK" in dockerfile and '"serve"' in dockerfile


def test_terraform_is_formatted_valid_and_passes_checkov(
    pair: tuple[Baked, Baked], combination: dict[str, str], tmp_path: Path
) -> None:
    project = pair[0].path
    folder = project / "infra" / "terraform"
    cloud = combination["cloud"]
    if cloud == "none":
        assert not folder.exists()
        return
    files = [str(path.relative_to(project)) for path in sorted(folder.glob("*.tf"))]
    assert once("terraform", project, files, lambda: terraform_problems(folder, tmp_path)) == []
    assert once("checkov", project, files, lambda: checkov_problems(folder)) == []
    optional = tmp_path / "optional.tfvars"
    optional.write_text(OPTIONAL_PIECES[cloud], encoding="utf-8")
    check = lambda: checkov_problems(folder, optional, OPTIONAL_RESOURCES[cloud])  # noqa: E731
    assert once("checkov-optional", project, files, check) == []


def test_dvc_remote_is_the_terraform_bucket(
    pair: tuple[Baked, Baked], combination: dict[str, str]
) -> None:
    """`.dvc/config` names the remote Terraform's output `dvc_remote_url` computes from the
    bucket's default name."""
    project = pair[0]
    config = project.text(".dvc/config")
    url = matched(r"^\s*url = (\S+)$", config, re.M)
    cloud = combination["cloud"]
    if cloud == "none":
        assert url.startswith("../../") and url.endswith("-dvc-storage")
        return
    variables = project.text("infra/terraform/variables.tf")
    declared = r'variable "(?:bucket_name|storage_account_name)" \{.*?default\s*=\s*"([^"]+)"'
    name = matched(declared, variables, re.S)
    outputs = project.text("infra/terraform/outputs.tf")
    remote = matched(r'output "dvc_remote_url" \{.*?value\s*=\s*"([^"]+)"', outputs, re.S)
    scheme = {"aws": "s3", "gcp": "gs", "azure": "azure"}[cloud]
    assert remote.startswith(f"{scheme}://")
    if cloud == "azure":
        assert url == "azure://artifacts/dvc"
        assert re.search(rf"^\s*account_name = {name}$", config, re.M)
    else:
        assert url == f"{scheme}://{name}/dvc"
    assert f"dvc[{ {'aws': 's3', 'gcp': 'gs', 'azure': 'azure'}[cloud] }]" in project.text(
        "pyproject.toml"
    )


def test_skypilot_task_and_kubernetes_job_load_in_their_tools(
    pair: tuple[Baked, Baked], combination: dict[str, str]
) -> None:
    project = pair[0].path
    sky, job = project / "deploy/skypilot/train.yaml", project / "deploy/k8s/train-job.yaml"
    assert sky.exists() == (combination["cloud"] != "none")
    assert job.exists() == (combination["use_docker"] == "yes")
    if sky.exists():
        assert f"infra: {combination['cloud']}" in sky.read_text(encoding="utf-8")
        check = lambda: deploy_problems("skypilot", sky)  # noqa: E731
        assert once("skypilot", project, ["deploy/skypilot/train.yaml"], check) == []
    # The training Job, and the serving Deployment, Service and autoscaler: the client's models
    # and the policy checks of tests/deploy_check.py.
    docker = combination["use_docker"] == "yes"
    expected = {
        "deploy/k8s/train-job.yaml": docker,
        "deploy/k8s/train-nodes.yaml": docker,
        "deploy/k8s/serve.yaml": docker,
        "deploy/k8s/serve-vllm.yaml": docker and combination["task"] == "text-generation",
        "deploy/k8s/serve-canary.yaml": docker,
    }
    for manifest, present in expected.items():
        path = project / manifest
        assert path.exists() == present, manifest
        if path.exists():
            # The canary is checked with serve.yaml, whose Deployment it takes over.
            kind = "canary" if manifest.endswith("-canary.yaml") else "kubernetes"
            read = [manifest, "deploy/k8s/serve.yaml"] if kind == "canary" else [manifest]
            check = functools.partial(deploy_problems, kind, path)
            assert once(kind, project, read, check) == []
    for manifest in ("deploy/k8s/serve.yaml", "deploy/k8s/serve-vllm.yaml"):
        path = project / manifest
        if path.exists():  # and a policy linter's view of the long-running pods
            check = functools.partial(kubernetes_policy_problems, path)
            assert once("checkov-kubernetes", project, [manifest], check) == []


def test_kubernetes_serving_answers_from_the_registry_champion(
    pair: tuple[Baked, Baked], combination: dict[str, str]
) -> None:
    """The pods serve `models:/<slug>@champion` (what `make promote` moves) on the probed port."""
    path = pair[0].path / "deploy/k8s/serve.yaml"
    if combination["use_docker"] != "yes":
        assert not path.exists()
        return
    documents = {d["kind"]: d for d in yaml.safe_load_all(path.read_text(encoding="utf-8"))}
    assert set(documents) == {"Deployment", "Service", "HorizontalPodAutoscaler"}
    pod = documents["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    command = container["command"]
    assert command[:2] == ["python", "-m"] and command[3] == "serve"
    assert (pair[0].path / "src" / command[2] / "serving" / "serve.py").is_file()
    # The registered model's name is the project's slug (the baked folder's name).
    assert command[command.index("--model") + 1] == f"models:/{pair[0].path.name}@champion"
    assert command[command.index("--port") + 1] == "8000"
    assert container["ports"] == [{"name": "http", "containerPort": 8000}]
    assert "nvidia.com/gpu" not in container["resources"].get("limits", {})
    assert documents["Service"]["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http"}
    ]


def test_kubeflow_pipeline_compiles_to_dvc_yamls_stages(
    pair: tuple[Baked, Baked], combination: dict[str, str], tmp_path: Path
) -> None:
    """deploy/kfp/pipeline.py (Docker answer) compiles with the kfp SDK into the stages of
    dvc.yaml, in its order, then promote; a changed dvc.yaml is told apart."""
    project = pair[0].path
    source = project / "deploy/kfp/pipeline.py"
    assert source.exists() == (combination["use_docker"] == "yes")
    if not source.exists():
        return
    compiled = tmp_path / "pipeline.yaml"
    run = compile_pipeline(project, compiled)
    assert run.returncode == 0, run.stderr[-3000:]
    documents = list(yaml.safe_load_all(compiled.read_text(encoding="utf-8")))
    dvc = yaml.safe_load(pair[0].text("dvc.yaml"))
    params = pair[0].text("params.yaml")
    assert pipeline_problems(documents, dvc, params) == []
    # What the check reads: a stage key the params lack, an output no step passes on, the order.
    changed = copy.deepcopy(dvc)
    changed["stages"]["train"]["params"].append("train.no_such_key")
    changed["stages"]["evaluate"]["outs"].append("plots/extra")
    found = pipeline_problems(documents, changed, params)
    assert "train reads train.no_such_key, which the params it gets lack" in found
    assert "evaluate does not pass on plots/extra" in found
    stages = changed["stages"]
    changed["stages"] = {"train": stages["train"], "prepare": stages["prepare"], **stages}
    assert "prepare does not run after train" in pipeline_problems(documents, changed, params)


def test_pyproject_is_valid(pair: tuple[Baked, Baked]) -> None:
    project = pair[0].path
    assert once("pyproject", project, ["pyproject.toml"], lambda: pyproject_problems(project)) == []


def test_repo_review_and_codespell_pass(pair: tuple[Baked, Baked]) -> None:
    """Scientific Python's repo-review fails no check that pyproject.toml does not ignore with a
    reason, and codespell finds no misspelled word."""
    project = pair[0].path
    assert repo_review_failures(project) == []
    assert spelling_problems(project) == []


def test_pre_commit_guards_notebooks_and_large_files(pair: tuple[Baked, Baked]) -> None:
    hooks = {
        hook["id"]
        for repo in yaml.safe_load(pair[0].text(".pre-commit-config.yaml"))["repos"]
        for hook in repo["hooks"]
    }
    assert {
        "ruff-check",
        "ruff-format",
        "mypy",
        "codespell",
        "zizmor",
        "check-added-large-files",
        "nbstripout",
        "detect-secrets",
    } <= hooks
    assert {"trailing-whitespace", "end-of-file-fixer", "check-yaml", "check-toml"} <= hooks


def test_vllm_serves_under_the_project_servers_name_wherever_it_runs(
    pair: tuple[Baked, Baked], combination: dict[str, str]
) -> None:
    """Text generation with Docker: the image's vLLM target and the cluster's vLLM Deployment
    start `vllm serve` as `serve.engine: vllm` does (vllm_server.py), on a GPU in the cluster."""
    project = pair[0]
    if combination["task"] != "text-generation" or combination["use_docker"] != "yes":
        path = project.path / "Dockerfile"
        assert not path.exists() or "AS vllm" not in path.read_text(encoding="utf-8")
        return
    slug = project.path.name
    flags = ["--served-model-name", slug, "--generation-config", "auto"]
    package = next((project.path / "src").iterdir()).name
    module = project.text(f"src/{package}/tasks/text_generation/vllm_server.py")
    assert all(f'"{flag}"' in module for flag in flags if flag != slug)
    dockerfile = project.text("Dockerfile")
    stage = dockerfile[dockerfile.index(" AS vllm") : dockerfile.index(" AS build")]
    assert 'ENTRYPOINT ["vllm", "serve"]' in stage and "USER 10001" in stage
    command = json.loads(matched(r"^CMD (\[.*\])$", stage, re.M))
    assert command[0] == "/app/models/export" and command[1:5] == flags
    documents = list(yaml.safe_load_all(project.text("deploy/k8s/serve-vllm.yaml")))
    [deployment] = [d for d in documents if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    [fetch], [server] = pod["initContainers"], pod["containers"]
    assert f"models:/{slug}@champion" in fetch["command"]
    assert server["args"][0].startswith(fetch["command"][-1]) and server["args"][1:5] == flags
    assert server["resources"]["limits"]["nvidia.com/gpu"] == "1"


@pytest.mark.parametrize("relpath", ["src/pkg/cli.py", "pyproject.toml", "params.yaml"])
def test_dockerignore_reading_lets_the_sources_in(relpath: str, tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text("*\n!src\n!pyproject.toml\n!params.yaml\n")
    assert dockerignore_allows(tmp_path, relpath)
    assert not dockerignore_allows(tmp_path, "data/x.parquet")


BAD_WORKFLOW = """name: bad
on: pull_request
permissions: {}
jobs:
  greet:
    runs-on: ubuntu-24.04
    timeout-minutes: 5
    steps:
      - run: echo "${{ github.event.pull_request.title }}"
"""
BAD_TERRAFORM = """resource "aws_s3_bucket_public_access_block" "open" {
  bucket                  = "somewhere"
  block_public_acls       = false
  block_public_policy     = false
  ignore_public_acls      = false
  restrict_public_buckets = false
}
"""
BAD_JOB = """apiVersion: batch/v1
kind: Job
metadata: {name: bad}
spec:
  template:
    spec:
      restartPolicyy: Never
      containers: [{name: c, image: busybox}]
"""
# A Deployment that runs as root and has no readiness probe, a Service whose selector finds no
# pods, an autoscaler of a misspelt Deployment with a field of autoscaling/v1.
BAD_TRAINJOB = """apiVersion: trainer.kubeflow.org/v1alpha1
kind: TrainJob
metadata: {name: bad}
spec:
  runtimeRef: {name: torch-distributed}
  trainer:
    image: x
    numNodes: 2
    numNode: 2
    command: [python, -m, pkg, train]
    resourcesPerNode: {requests: {cpu: "4"}, limits: {memory: 1Gi}}
  runtimePatches:
    - manager: me
      trainingRuntimeSpec:
        template:
          spec:
            replicatedJobs:
              - name: node
                template:
                  spec:
                    template:
                      spec:
                        containers: [{name: node}]
"""
BAD_SERVE = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 0, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: c
          image: busybox
          ports: [{name: http, containerPort: 8000}]
          livenessProbe: {httpGet: {path: /health, port: http}}
          resources: {requests: {cpu: "1", memory: 1Gi}, limits: {memory: 1Gi}}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {drop: [ALL]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: webb}
  ports: [{port: 80, targetPort: http}]
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: wbe}
  minReplicas: 2
  maxReplicas: 4
  targetCPUUtilizationPercentage: 70
"""

# Beside BAD_SERVE (as serve.yaml): a canary that would never work.
BAD_CANARY = """apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  strategy:
    canary:
      stableService: web
      canaryService: web-canary
      steps:
        - setWeight: 50
        - setWeight: 10
        - pauze: {}
      analysis:
        templates: [{templateName: checks}]
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: checks}
spec:
  args: [{name: service}]
  metrics:
    - name: health
      provider: {web: {url: "http://web/healthz", jsonPath: "{$.status}"}}
"""


def test_the_validators_catch_known_defects(tmp_path: Path) -> None:
    """Each validator, fed a file with a known defect, reports it: none of them passes blindly."""
    workflow = tmp_path / ".github" / "workflows" / "bad.yml"
    workflow.parent.mkdir(parents=True)
    workflow.write_text(BAD_WORKFLOW, encoding="utf-8")
    found = workflow_problems(tmp_path, [workflow])
    assert any("zizmor" in problem and "template-injection" in problem for problem in found)
    assert any("jactionlint" in problem and "untrusted" in problem for problem in found)

    (tmp_path / "Dockerfile").write_text("FROM python\nRUN pip install torch\n", encoding="utf-8")
    assert any("DL3006" in problem for problem in dockerfile_problems(tmp_path))

    terraform = tmp_path / "terraform"
    terraform.mkdir()
    (terraform / "main.tf").write_text(BAD_TERRAFORM, encoding="utf-8")
    found = checkov_problems(terraform, scanned=["aws_instance.absent[0]"])
    assert any("CKV_AWS_56" in problem for problem in found)
    assert "checkov did not scan aws_instance.absent[0]" in found
    (terraform / "main.tf").write_text('resource "x" {\n', encoding="utf-8")
    assert any("terraform validate" in p for p in terraform_problems(terraform, tmp_path))

    job = tmp_path / "job.yaml"
    job.write_text(BAD_JOB, encoding="utf-8")
    found = deploy_problems("kubernetes", job)
    assert "Job bad: spec.template.spec.restartPolicyy: unknown field" in found
    assert "Job bad: runAsNonRoot is not true" in found
    assert "Job bad container c: readOnlyRootFilesystem is not true" in found
    trainjob = tmp_path / "train-nodes.yaml"
    trainjob.write_text(BAD_TRAINJOB, encoding="utf-8")
    found = deploy_problems("kubernetes", trainjob)
    assert "TrainJob bad: spec.trainer: Additional properties are not allowed " in found[0]
    assert "TrainJob bad: the command starts no torchrun: each node would train alone" in found
    assert "TrainJob bad node pods: runAsNonRoot is not true" in found
    assert "TrainJob bad node pods container node: no cpu and memory requests" in found
    assert "TrainJob bad node pods: no writable /work, where the command runs" in found
    serve = tmp_path / "serve.yaml"
    serve.write_text(BAD_SERVE, encoding="utf-8")
    assert deploy_problems("kubernetes", serve) == [
        "HorizontalPodAutoscaler web: spec.targetCPUUtilizationPercentage: unknown field",
        "Deployment web: runAsUser is 0 (root)",
        "Deployment web container c: no readinessProbe on GET /health",
        "Service web: selector matches no Deployment's pods in the file",
        "HorizontalPodAutoscaler web: scaleTargetRef Deployment/wbe is no Deployment in the file",
    ]
    found = kubernetes_policy_problems(serve)
    assert any(problem.startswith("checkov CKV_K8S_9 ") for problem in found)  # readiness
    canary = tmp_path / "serve-canary.yaml"
    canary.write_text(BAD_CANARY, encoding="utf-8")
    found = deploy_problems("canary", canary)
    for problem in (
        "Rollout web: spec.strategy.canary.steps.2: Additional properties are not allowed "
        "('pauze' was unexpected)",
        "Rollout web: workloadRef.scaleDown keeps the Deployment's pods serving too",
        "Rollout web: stableService web selects none of its pods",
        "Rollout web: canaryService web-canary is no Service in the files",
        "Rollout web: setWeight [50, 10] does not rise from above 0 to below 100",
        "Rollout web: setWeight 50 has no pause after it",
        "Rollout web: the analysis gives no value to service",
        "AnalysisTemplate checks: no metric reads the canary's /health",
        "AnalysisTemplate checks: no metric reads the canary's 5xx share of http_requests_total",
        "AnalysisTemplate checks: metric health has no condition",
    ):
        assert problem in found, (problem, found)
