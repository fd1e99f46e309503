"""dvc.yaml's stages (prepare -> train -> evaluate) and then `promote`, as a Kubeflow Pipelines
(v2) pipeline: each step runs the project's image with its verb, in a scratch folder whose
params.yaml is the pipeline's `params` argument (by default this project's params.yaml when the
pipeline is compiled, as JSON); the prepared data, the model and the plots pass from step to step
as artifacts in the pipeline root, a bucket. The steps log to the MLflow server that the
Kubernetes Secret `mlflow` names (key `tracking-uri`); promote moves @champion as `make promote`
does.

kfp is not a dependency of the project: compile with it beside the project (the README's
"More devices and machines" has the uv command), which writes deploy/kfp/pipeline.yaml, the file
the Kubeflow UI and `kfp.Client` submit.
"""

# No `from __future__ import annotations`: kfp reads the components' annotations as types.
import argparse
import json
from pathlib import Path
from typing import Any

import yaml
from kfp import compiler, dsl, kubernetes

PROJECT = Path(__file__).resolve().parents[2]
IMAGE = "ghcr.io/OWNER/{{ cookiecutter.project_slug }}:v0.1.0"
PACKAGE = "{{ cookiecutter.package_name }}"
# The Kubernetes Secret, and its key, that hold the tracking server's address.
TRACKING_URI_FROM = ("mlflow", "tracking-uri")
# Each step works in a scratch folder (the image's /app is read-only to its user) with the run's
# params.yaml; the placeholders arrive as $1, $2, ...
START = 'set -e\nmkdir -p /tmp/work && cd /tmp/work\nprintf "%s" "$1" > params.yaml\n'


def _verb(
    verb: str, params: str, inputs: dict[str, Any], outputs: dict[str, Any]
) -> dsl.ContainerSpec:
    """`python -m PACKAGE verb` with `params` as params.yaml, each input artifact copied to its
    project folder first and each output path (a folder, or metrics.json) copied to its artifact
    after; the script reads the paths as $2, $3, ... ($1 is params)."""
    lines, args = [], [params]
    for folder, artifact in inputs.items():
        args.append(artifact.path)
        lines.append(f'mkdir -p {folder} && cp -a "${len(args)}"/. {folder}/')
    lines.append(f"python -m {PACKAGE} {verb}")
    for path, artifact in outputs.items():
        args.append(artifact.path)
        if path.endswith(".json"):
            lines.append(f'cp {path} "${len(args)}"')
        else:  # created where the verb writes nothing (data/examples of a text task)
            lines.append(f'mkdir -p {path} "${len(args)}" && cp -a {path}/. "${len(args)}"/')
    script = START + "\n".join(lines) + "\n"
    return dsl.ContainerSpec(image=IMAGE, command=["sh", "-ec", script, "sh"], args=args)


@dsl.container_component
def prepare(params: str, prepared: dsl.Output[dsl.Dataset], examples: dsl.Output[dsl.Dataset]):
    """`prepare`: data/prepared (and data/examples, where the task writes them)."""
    outputs = {"data/prepared": prepared, "data/examples": examples}
    return _verb("prepare", params, {}, outputs)


@dsl.container_component
def train(
    params: str,
    prepared: dsl.Input[dsl.Dataset],
    model: dsl.Output[dsl.Model],
    train_plots: dsl.Output[dsl.Artifact],
):
    """`train` on the prepared data: models/model and plots/train."""
    outputs = {"models/model": model, "plots/train": train_plots}
    return _verb("train", params, {"data/prepared": prepared}, outputs)


@dsl.container_component
def evaluate(
    params: str,
    prepared: dsl.Input[dsl.Dataset],
    model: dsl.Input[dsl.Model],
    evaluate_plots: dsl.Output[dsl.Artifact],
    metrics: dsl.Output[dsl.Artifact],
):
    """`evaluate` the model on the test split: plots/evaluate and metrics.json."""
    inputs = {"data/prepared": prepared, "models/model": model}
    outputs = {"plots/evaluate": evaluate_plots, "metrics.json": metrics}
    return _verb("evaluate", params, inputs, outputs)


@dsl.container_component
def promote(params: str, model: dsl.Input[dsl.Model]):
    """`promote` the model's run: @champion when it beats the champion (else the step fails)."""
    return _verb("promote", params, {"models/model": model}, {})


# params.yaml as one line of JSON, which YAML reads: a Struct parameter refuses its nulls, and kfp
# writes the defaults into a comment that a text of several lines would break.
DEFAULTS = json.dumps(yaml.safe_load((PROJECT / "params.yaml").read_text(encoding="utf-8")))


@dsl.pipeline(name="{{ cookiecutter.project_slug | replace('_', '-') }}", description="dvc.yaml's stages, then promote")
def flywheel(params: str = DEFAULTS) -> None:
    prepared = prepare(params=params)
    trained = train(params=params, prepared=prepared.outputs["prepared"])
    evaluated = evaluate(
        params=params, prepared=prepared.outputs["prepared"], model=trained.outputs["model"]
    )
    promoted = promote(params=params, model=trained.outputs["model"]).after(evaluated)
    for step in (prepared, trained, evaluated, promoted):
        # Every run trains again: a cached step would skip a new image or a new champion.
        step.set_caching_options(False)
        # MLflow's caches go to the home folder: the writable /tmp.
        step.set_env_variable("HOME", "/tmp")
        name, key = TRACKING_URI_FROM
        kubernetes.use_secret_as_env(step, name, {key: "MLFLOW_TRACKING_URI"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = Path(__file__).with_name("pipeline.yaml")
    parser.add_argument("--output", type=Path, default=default, help="the compiled pipeline")
    output = parser.parse_args().output
    compiler.Compiler().compile(flywheel, package_path=str(output))
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
