"""Validate a SkyPilot task file or a Kubernetes manifest with the tools' own code.

Runs in the deploy validators' environment (SkyPilot and the Kubernetes client), not in the
template's: `python deploy_check.py skypilot|kubernetes FILE` prints one problem per line.
Kubernetes manifests (every document of the file) load in the client's models, then pass the
policy checks below, which know the template's intent (probes on /health, the Service and the
autoscaler aimed at the Deployment); tests/test_ops_artifacts.py adds checkov's generic policies.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import yaml


def skypilot_problems(path: Path) -> list[str]:
    import sky

    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    problems = []
    try:  # required envs (null in the file) must be named on the command line
        sky.Task.from_yaml_config(config)
        problems.append("no required --env: the task would run without a tracking server")
    except ValueError as error:
        if "MLFLOW_TRACKING_URI" not in str(error):
            problems.append(str(error))
    try:
        task = sky.Task.from_yaml_config(
            config, env_overrides=[("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")]
        )
    except Exception as error:  # SkyPilot's schema and resource checks
        return [*problems, f"{type(error).__name__}: {error}"]
    if not all(resources.accelerators for resources in task.resources):
        problems.append("a resource choice without a GPU")
    # Several VMs, as `sky launch --num-nodes 2` asks: the same task on a cluster of two.
    cluster = sky.Task.from_yaml_config(
        {**config, "num_nodes": 2}, env_overrides=[("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")]
    )
    if (task.num_nodes, cluster.num_nodes) != (1, 2):
        problems.append(f"num_nodes: {task.num_nodes} by default and {cluster.num_nodes} for 2")
    return problems


def _dropped(original: object, kept: object, where: str = "") -> list[str]:
    """Keys the client's models do not know (they would be dropped silently)."""
    if isinstance(original, dict) and isinstance(kept, dict):
        found = []
        for key, value in original.items():
            if key not in kept:
                found.append(f"{where}{key}: unknown field")
            else:
                found += _dropped(value, kept[key], f"{where}{key}.")
        return found
    if isinstance(original, list) and isinstance(kept, list):
        return [
            p
            for i, (a, b) in enumerate(zip(original, kept, strict=True))
            for p in _dropped(a, b, f"{where}{i}.")
        ]
    return []


def _container_problems(container: dict, where: str, main: bool) -> list[str]:
    """What every container must hold back; a main container also states its resources."""
    problems = []
    security = container.get("securityContext") or {}
    if security.get("allowPrivilegeEscalation") is not False:
        problems.append(f"{where}: allowPrivilegeEscalation is not false")
    if security.get("readOnlyRootFilesystem") is not True:
        problems.append(f"{where}: readOnlyRootFilesystem is not true")
    if "ALL" not in ((security.get("capabilities") or {}).get("drop") or []):
        problems.append(f"{where}: capabilities do not drop ALL")
    if security.get("privileged") or security.get("runAsUser") == 0:
        problems.append(f"{where}: runs privileged or as root")
    if security.get("runAsNonRoot") is False:
        problems.append(f"{where}: runAsNonRoot is false")
    resources = container.get("resources") or {}
    if main and not {"cpu", "memory"} <= set(resources.get("requests") or {}):
        problems.append(f"{where}: no cpu and memory requests")
    if main and "memory" not in (resources.get("limits") or {}):
        problems.append(f"{where}: no memory limit")
    return problems


def _pod_problems(pod: dict, where: str) -> list[str]:
    """Non-root with the runtime's seccomp profile, and every container locked down."""
    problems = []
    security = pod.get("securityContext") or {}
    if security.get("runAsNonRoot") is not True:
        problems.append(f"{where}: runAsNonRoot is not true")
    if security.get("runAsUser") == 0:
        problems.append(f"{where}: runAsUser is 0 (root)")
    if (security.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        problems.append(f"{where}: seccompProfile is not RuntimeDefault")
    if pod.get("hostNetwork") or pod.get("hostPID") or pod.get("hostIPC"):
        problems.append(f"{where}: shares a host namespace")
    for key, main in (("containers", True), ("initContainers", False)):
        for container in pod.get(key) or []:
            name = f"{where} {key[:-1]} {container.get('name')}"
            problems += _container_problems(container, name, main)
    return problems


def _probe_problems(container: dict, where: str) -> list[str]:
    """A server's readiness and liveness are asked on GET /health of one of its ports."""
    ports = _ports([container])
    problems = []
    for probe in ("readinessProbe", "livenessProbe"):
        get = (container.get(probe) or {}).get("httpGet") or {}
        if get.get("path") != "/health":
            problems.append(f"{where}: no {probe} on GET /health")
        elif get.get("port") not in ports:
            problems.append(f"{where}: {probe} on port {get.get('port')}, not a container port")
    return problems


def _labelled(selector: dict, labels: dict) -> bool:
    return bool(selector) and selector.items() <= labels.items()


def _pod_template(document: dict) -> dict:
    return (document.get("spec") or {}).get("template") or {}


def _containers(pod: dict) -> list[dict]:
    return (pod.get("spec") or {}).get("containers") or []


def _ports(containers: list[dict]) -> set[object]:
    """Numbers and names of the containers' ports (a Service or a probe names either)."""
    return {
        value
        for container in containers
        for port in container.get("ports") or []
        for value in (port.get("containerPort"), port.get("name"))
    }


def _deployment_problems(spec: dict, where: str) -> list[str]:
    pod = spec.get("template") or {}
    labels = (pod.get("metadata") or {}).get("labels") or {}
    problems = []
    if not _labelled((spec.get("selector") or {}).get("matchLabels") or {}, labels):
        problems.append(f"{where}: selector does not match the pod template's labels")
    for container in _containers(pod):
        problems += _probe_problems(container, f"{where} container {container.get('name')}")
    return problems


def _service_problems(spec: dict, where: str, deployments: dict[str, dict]) -> list[str]:
    pods = [_pod_template(d) for d in deployments.values()]
    selector = spec.get("selector") or {}
    chosen = [p for p in pods if _labelled(selector, (p.get("metadata") or {}).get("labels") or {})]
    if not chosen:
        return [f"{where}: selector matches no Deployment's pods in the file"]
    ports = _ports([c for pod in chosen for c in _containers(pod)])
    return [
        f"{where}: targetPort {target} is no port of its pods"
        for port in spec.get("ports") or []
        if (target := port.get("targetPort", port.get("port"))) not in ports
    ]


def _autoscaler_problems(spec: dict, where: str, deployments: dict[str, dict]) -> list[str]:
    target = spec.get("scaleTargetRef") or {}
    if target.get("kind") != "Deployment" or target.get("name") not in deployments:
        named = f"{target.get('kind')}/{target.get('name')}"
        return [f"{where}: scaleTargetRef {named} is no Deployment in the file"]
    problems = []
    if (spec.get("minReplicas") or 1) < 2:
        problems.append(f"{where}: minReplicas below 2 (a restart would pause serving)")
    # Utilisation is a share of the request: a resource not requested cannot be scaled on.
    containers = _containers(_pod_template(deployments[target["name"]]))
    requested = [set((c.get("resources") or {}).get("requests") or {}) for c in containers]
    for metric in spec.get("metrics") or []:
        resource = (metric.get("resource") or {}).get("name")
        if resource and not all(resource in names for names in requested):
            problems.append(f"{where}: scales on {resource}, which a container does not request")
    return problems


def _manifest_problems(documents: list[dict]) -> list[str]:
    """Per kind, and across the documents: what the API server accepts but would not work."""
    deployments: dict[str, dict] = {
        (d.get("metadata") or {}).get("name", ""): d for d in documents if d["kind"] == "Deployment"
    }
    problems = []
    for document in documents:
        kind, spec = document["kind"], document.get("spec") or {}
        where = f"{kind} {(document.get('metadata') or {}).get('name')}"
        if kind in ("Job", "Deployment"):
            problems += _pod_problems(_pod_template(document).get("spec") or {}, where)
        if kind == "Deployment":
            problems += _deployment_problems(spec, where)
        elif kind == "Service":
            problems += _service_problems(spec, where, deployments)
        elif kind == "HorizontalPodAutoscaler":
            problems += _autoscaler_problems(spec, where, deployments)
    return problems


# Kubeflow Trainer's TrainJob: its CRD's schema (tests/schemas/README.md says where it comes from,
# and how every object in it is closed to unknown fields, as the API server's validation is).
TRAINJOB_API = "trainer.kubeflow.org/v1alpha1"
TRAINJOB_SCHEMA = Path(__file__).with_name("schemas") / "trainjob.v1alpha1.schema.json"


def _node_pods(spec: dict) -> list[dict]:
    """The pod specs the TrainJob's runtime patches give the runtime's `node` pods."""
    return [
        ((job.get("template") or {}).get("spec") or {}).get("template", {}).get("spec") or {}
        for patch in spec.get("runtimePatches") or []
        for job in (
            ((patch.get("trainingRuntimeSpec") or {}).get("template") or {}).get("spec") or {}
        ).get("replicatedJobs")
        or []
        if job.get("name") == "node"
    ]


def _trainjob_problems(document: dict, where: str) -> list[str]:
    """The CRD's schema; torchrun as the command (it reads the rendezvous Kubeflow sets on every
    node); the Job's hardening on the `node` pods, whose resources are the trainer's per node."""
    import jsonschema

    schema = json.loads(TRAINJOB_SCHEMA.read_text(encoding="utf-8"))
    problems = [
        f"{where}: {'.'.join(map(str, error.absolute_path)) or 'the document'}: {error.message}"
        for error in jsonschema.Draft7Validator(schema).iter_errors(document)
    ]
    spec = document.get("spec") or {}
    trainer = spec.get("trainer") or {}
    if (spec.get("runtimeRef") or {}).get("name") != "torch-distributed":
        problems.append(f"{where}: runtimeRef is not torch-distributed")
    if "torchrun" not in " ".join(trainer.get("command") or []):
        problems.append(f"{where}: the command starts no torchrun: each node would train alone")
    if (trainer.get("numNodes") or 1) < 2:
        problems.append(f"{where}: numNodes below 2 (one node is train-job.yaml's Job)")
    pods = _node_pods(spec)
    if not pods:
        problems.append(f"{where}: no runtime patch for the `node` pods")
    for pod in pods:
        resources = trainer.get("resourcesPerNode") or {}
        containers = [{**c, "resources": resources} for c in pod.get("containers") or []]
        # A patch names the runtime's container: another name adds a container beside it.
        if [c.get("name") for c in containers] != ["node"]:
            problems.append(f"{where} node pods: the patch must name the `node` container alone")
        mounts = [m.get("mountPath") for c in containers for m in c.get("volumeMounts") or []]
        if "/work" not in mounts:
            problems.append(f"{where} node pods: no writable /work, where the command runs")
        problems += _pod_problems({**pod, "containers": containers}, f"{where} node pods")
    return problems


def kubernetes_problems(path: Path) -> list[str]:
    """Every document in the client's model of its kind and version, then the policy checks."""
    from kubernetes import client

    api = client.ApiClient()
    documents, problems = [], []
    for index, document in enumerate(yaml.safe_load_all(path.read_text(encoding="utf-8"))):
        if document is None:  # an empty document (a trailing ---)
            continue
        if not isinstance(document, dict):
            problems.append(f"document {index}: not a mapping")
            continue
        named = f"{document.get('kind')} {(document.get('metadata') or {}).get('name')}"
        if (document.get("apiVersion"), document.get("kind")) == (TRAINJOB_API, "TrainJob"):
            problems += _trainjob_problems(document, named)
            documents.append(document)
            continue
        # apps/v1 Deployment: V1Deployment; autoscaling/v2 HorizontalPodAutoscaler: V2...
        version = str(document.get("apiVersion", "")).rsplit("/", 1)[-1]
        model = f"{version.capitalize()}{document.get('kind', '')}"
        try:
            loaded = api.deserialize(json.dumps(document), model, "application/json")
        except (ValueError, AttributeError) as error:
            problems.append(f"document {index} ({model}): {error}")
            continue
        problems += _dropped(document, api.sanitize_for_serialization(loaded), f"{named}: ")
        documents.append(document)
    if not documents and not problems:
        return ["no Kubernetes object in the file"]
    return problems + _manifest_problems(documents)


CHECKS = {"skypilot": skypilot_problems, "kubernetes": kubernetes_problems}


def serve() -> None:
    """One request per stdin line, `KIND<TAB>PATH`, one JSON list of problems per stdout line:
    the test worker keeps this process, so SkyPilot and the Kubernetes client load once."""
    # The answers get stdout to themselves: whatever the libraries print (SkyPilot logs to
    # stdout) goes to stderr, or it would be read as an answer.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    for line in sys.stdin:
        kind, path = line.rstrip("\n").split("\t")
        try:
            problems = CHECKS[kind](Path(path))
        except Exception as error:  # reported as the check's own crash, and the next goes on
            problems = [f"{kind} check crashed: {type(error).__name__}: {error}"]
        answers.write(json.dumps(problems) + "\n")


if __name__ == "__main__":
    if len(sys.argv) == 1:
        serve()
    else:
        for problem in CHECKS[sys.argv[1]](Path(sys.argv[2])):
            print(problem)
