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


def _autoscaler_problems(
    spec: dict, where: str, deployments: dict[str, dict], rollouts: dict[str, dict]
) -> list[str]:
    target = dict(spec.get("scaleTargetRef") or {})
    if target.get("kind") == "Rollout" and target.get("name") in rollouts:
        # A Rollout runs its workloadRef's pods: the resources are the Deployment's.
        reference = (rollouts[target["name"]].get("spec") or {}).get("workloadRef") or {}
        target = {"kind": "Deployment", "name": reference.get("name")}
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


def _named(documents: list[dict], kind: str) -> dict[str, dict]:
    return {(d.get("metadata") or {}).get("name", ""): d for d in documents if d["kind"] == kind}


def _manifest_problems(documents: list[dict]) -> list[str]:
    """Per kind, and across the documents: what the API server accepts but would not work."""
    deployments = _named(documents, "Deployment")
    rollouts = _named(documents, "Rollout")
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
            problems += _autoscaler_problems(spec, where, deployments, rollouts)
        elif kind == "Rollout":
            problems += _rollout_problems(document, where, documents)
        elif kind == "AnalysisTemplate":
            problems += _analysis_problems(spec, where)
    return problems


# Argo Rollouts' canary (serve-canary.yaml): its CRDs' schemas (tests/schemas/README.md), and what
# the canary needs to work: it takes over serve.yaml's Deployment, its Services select those pods,
# the weights rise step by step with a pause after each, and a background analysis that reads the
# canary's /health and its share of 5xx answers (serve's /metrics) can abort it.
ARGO_API = "argoproj.io/v1alpha1"
ARGO_SCHEMAS = {
    "Rollout": Path(__file__).with_name("schemas") / "rollout.v1alpha1.schema.json",
    "AnalysisTemplate": Path(__file__).with_name("schemas")
    / "analysistemplate.v1alpha1.schema.json",
}


def _schema_problems(document: dict, schema_file: Path, where: str) -> list[str]:
    import jsonschema

    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    return [
        f"{where}: {'.'.join(map(str, error.absolute_path)) or 'the document'}: {error.message}"
        for error in jsonschema.Draft7Validator(schema).iter_errors(document)
    ]


def _rollout_problems(document: dict, where: str, documents: list[dict]) -> list[str]:
    spec = document.get("spec") or {}
    reference = spec.get("workloadRef") or {}
    deployment = _named(documents, "Deployment").get(reference.get("name", ""))
    if (reference.get("apiVersion"), reference.get("kind")) != ("apps/v1", "Deployment") or not (
        deployment
    ):
        named = f"{reference.get('kind')}/{reference.get('name')}"
        return [f"{where}: workloadRef {named} is no Deployment of serve.yaml"]
    problems = []
    if reference.get("scaleDown") not in ("onsuccess", "progressively"):
        problems.append(f"{where}: workloadRef.scaleDown keeps the Deployment's pods serving too")
    if spec.get("selector") != (deployment.get("spec") or {}).get("selector"):
        problems.append(f"{where}: selector differs from the Deployment's")
    canary = (spec.get("strategy") or {}).get("canary")
    if not canary:
        return [*problems, f"{where}: no canary strategy"]
    labels = (_pod_template(deployment).get("metadata") or {}).get("labels") or {}
    services = _named(documents, "Service")
    roles = ("stableService", "canaryService")
    for role in roles:
        service = services.get(canary.get(role, ""))
        if service is None:
            problems.append(f"{where}: {role} {canary.get(role)} is no Service in the files")
        elif not _labelled((service.get("spec") or {}).get("selector") or {}, labels):
            problems.append(f"{where}: {role} {canary.get(role)} selects none of its pods")
    if canary.get(roles[0]) == canary.get(roles[1]):
        problems.append(f"{where}: stableService and canaryService are the same Service")
    steps = canary.get("steps") or []
    weights = [step["setWeight"] for step in steps if "setWeight" in step]
    if not weights or weights != sorted(set(weights)) or not 0 < weights[0] <= weights[-1] < 100:
        problems.append(f"{where}: setWeight {weights} does not rise from above 0 to below 100")
    for index, step in enumerate(steps):
        if "setWeight" in step and "pause" not in (steps[index + 1 : index + 2] or [{}])[0]:
            problems.append(f"{where}: setWeight {step['setWeight']} has no pause after it")
    analysis = canary.get("analysis") or {}
    templates = _named(documents, "AnalysisTemplate")
    given = {arg.get("name") for arg in analysis.get("args") or []}
    if not analysis.get("templates"):
        problems.append(f"{where}: no background analysis: nothing would abort a failing canary")
    for entry in analysis.get("templates") or []:
        template = templates.get(entry.get("templateName", ""))
        if template is None:
            problems.append(
                f"{where}: analysis template {entry.get('templateName')} is not in the file"
            )
            continue
        needed = {
            arg["name"]
            for arg in (template.get("spec") or {}).get("args") or []
            if "value" not in arg and "valueFrom" not in arg
        }
        if needed - given:
            missing = ", ".join(sorted(needed - given))
            problems.append(f"{where}: the analysis gives no value to {missing}")
    return problems


def _analysis_problems(spec: dict, where: str) -> list[str]:
    metrics = spec.get("metrics") or []
    providers = [metric.get("provider") or {} for metric in metrics]
    problems = []
    health = [p["web"] for p in providers if "web" in p]
    if not any(w.get("url", "").endswith("/health") and w.get("jsonPath") for w in health):
        problems.append(f"{where}: no metric reads the canary's /health")
    queries = [(p.get("prometheus") or {}).get("query", "") for p in providers]
    if not any("http_requests_total" in q and '"5xx"' in q for q in queries):
        problems.append(f"{where}: no metric reads the canary's 5xx share of http_requests_total")
    for metric in metrics:
        if not metric.get("successCondition") and not metric.get("failureCondition"):
            problems.append(f"{where}: metric {metric.get('name')} has no condition")
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
    problems = _schema_problems(document, TRAINJOB_SCHEMA, where)
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


def _loaded(path: Path) -> tuple[list[dict], list[str]]:
    """The file's documents, each checked against its kind's model: the client's, or for
    custom resources their CRD's schema."""
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
        if document.get("apiVersion") == ARGO_API and document.get("kind") in ARGO_SCHEMAS:
            problems += _schema_problems(document, ARGO_SCHEMAS[document["kind"]], named)
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
    return documents, problems


def kubernetes_problems(path: Path) -> list[str]:
    """Every document in the client's model of its kind and version, then the policy checks."""
    documents, problems = _loaded(path)
    if not documents and not problems:
        return ["no Kubernetes object in the file"]
    return problems + _manifest_problems(documents)


def canary_problems(path: Path) -> list[str]:
    """serve-canary.yaml applied after serve.yaml, beside it: its objects replace serve.yaml's of
    the same kind and name (the autoscaler, retargeted at the Rollout)."""
    serve = path.with_name("serve.yaml")
    if not serve.is_file():
        return [f"no serve.yaml beside {path.name}: the Rollout takes over its Deployment"]
    base, _ = _loaded(serve)  # serve.yaml's own problems are its own check's
    documents, problems = _loaded(path)
    replaced = {(d["kind"], (d.get("metadata") or {}).get("name")) for d in documents}
    kept = [d for d in base if (d["kind"], (d.get("metadata") or {}).get("name")) not in replaced]
    if not any(d["kind"] == "Rollout" for d in documents):
        problems.append("no Rollout in the file")
    return problems + _manifest_problems(kept + documents)


CHECKS = {
    "skypilot": skypilot_problems,
    "kubernetes": kubernetes_problems,
    "canary": canary_problems,
}


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
