"""Validate a SkyPilot task file or a Kubernetes manifest with the tools' own code.

Runs in the deploy validators' environment (SkyPilot and the Kubernetes client), not in the
template's: `python deploy_check.py skypilot|kubernetes FILE` prints one problem per line.
"""

from __future__ import annotations

import json
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


def kubernetes_problems(path: Path) -> list[str]:
    from kubernetes import client

    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    api = client.ApiClient()
    kind = f"V1{document.get('kind', '')}"
    try:
        model = api.deserialize(json.dumps(document), kind, "application/json")
    except (ValueError, AttributeError) as error:
        return [f"{kind}: {error}"]
    return _dropped(document, api.sanitize_for_serialization(model))


if __name__ == "__main__":
    check = {"skypilot": skypilot_problems, "kubernetes": kubernetes_problems}[sys.argv[1]]
    for problem in check(Path(sys.argv[2])):
        print(problem)
