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


def _script(body: str) -> list[str]:
    return ["sh", "-ec", START + body, "sh"]  # "sh" is $0


@dsl.container_component
def prepare(params: str, prepared: dsl.Output[dsl.Dataset], examples: dsl.Output[dsl.Dataset]):
    """`prepare`: data/prepared (and data/examples, where the task writes them)."""
    return dsl.ContainerSpec(
        image=IMAGE,
        command=_script(
            f"python -m {PACKAGE} prepare\n"
            'mkdir -p data/examples "$2" "$3"\n'
            'cp -a data/prepared/. "$2"/ && cp -a data/examples/. "$3"/\n'
        ),
        args=[params, prepared.path, examples.path],
    )


@dsl.container_component
def train(
    params: str,
    prepared: dsl.Input[dsl.Dataset],
    model: dsl.Output[dsl.Model],
    train_plots: dsl.Output[dsl.Artifact],
):
    """`train` on the prepared data: models/model and plots/train."""
    return dsl.ContainerSpec(
        image=IMAGE,
        command=_script(
            'mkdir -p data/prepared && cp -a "$2"/. data/prepared/\n'
            f"python -m {PACKAGE} train\n"
            'mkdir -p "$3" "$4" && cp -a models/model/. "$3"/ && cp -a plots/train/. "$4"/\n'
        ),
        args=[params, prepared.path, model.path, train_plots.path],
    )


@dsl.container_component
def evaluate(
    params: str,
    prepared: dsl.Input[dsl.Dataset],
    model: dsl.Input[dsl.Model],
    evaluate_plots: dsl.Output[dsl.Artifact],
    metrics: dsl.Output[dsl.Artifact],
):
    """`evaluate` the model on the test split: plots/evaluate and metrics.json."""
    return dsl.ContainerSpec(
        image=IMAGE,
        command=_script(
            'mkdir -p data/prepared models/model && cp -a "$2"/. data/prepared/\n'
            'cp -a "$3"/. models/model/\n'
            f"python -m {PACKAGE} evaluate\n"
            'mkdir -p "$4" && cp -a plots/evaluate/. "$4"/ && cp metrics.json "$5"\n'
        ),
        args=[params, prepared.path, model.path, evaluate_plots.path, metrics.path],
    )


@dsl.container_component
def promote(params: str, model: dsl.Input[dsl.Model]):
    """`promote` the model's run: @champion when it beats the champion (else the step fails)."""
    return dsl.ContainerSpec(
        image=IMAGE,
        command=_script(
            f'mkdir -p models/model && cp -a "$2"/. models/model/\npython -m {PACKAGE} promote\n'
        ),
        args=[params, model.path],
    )


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
