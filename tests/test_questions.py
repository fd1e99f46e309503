"""cookiecutter.json and copier.yml ask the same questions with the same defaults and choices."""

from __future__ import annotations

import keyword
import sys

import jinja2.sandbox
import pytest
import yaml
from cookiecutter.generate import generate_context
from cookiecutter.prompt import prompt_for_config
from helpers import TEMPLATE_ROOT, cookiecutter_json, copier_task_choices, copier_yml

# Asked by copier only: cookiecutter derives it from its combined task question.
DERIVED_IN_COOKIECUTTER = {"modality": "__modality"}


def copier_questions() -> dict[str, dict]:
    return {
        name: spec
        for name, spec in copier_yml().items()
        if not name.startswith("_") and spec.get("when") is not False
    }


def cookiecutter_defaults(**answers: str) -> dict[str, str]:
    context = generate_context(
        context_file=str(TEMPLATE_ROOT / "cookiecutter.json"), extra_context=answers
    )
    return dict(prompt_for_config(context, no_input=True))


def copier_default(name: str, **answers: str) -> str:
    env = jinja2.sandbox.SandboxedEnvironment(undefined=jinja2.StrictUndefined)
    return env.from_string(str(copier_questions()[name]["default"])).render(answers)


def test_same_question_names() -> None:
    cookie = {k for k in cookiecutter_json() if not k.startswith("_")}
    cookie |= set(DERIVED_IN_COOKIECUTTER)
    assert cookie == set(copier_questions())


@pytest.mark.parametrize("name", ["python_version", "license", "cloud", "use_docker", "ci"])
def test_same_choices_and_default(name: str) -> None:
    cookie = cookiecutter_json()[name]
    spec = copier_questions()[name]
    assert cookie == spec["choices"]
    assert cookie[0] == spec["default"]  # cookiecutter's default is its first choice
    assert all(isinstance(choice, str) for choice in spec["choices"])


def test_task_choices_are_the_union_of_copier_tasks_per_modality() -> None:
    modalities = list(copier_questions()["modality"]["choices"].values())
    copier_tasks = [task for modality in modalities for task in copier_task_choices(modality)]
    assert sorted(copier_tasks) == sorted(cookiecutter_json()["task"])
    assert len(copier_tasks) == len(set(copier_tasks)), "a task belongs to one modality"


@pytest.mark.parametrize("modality", ["nlp", "speech", "vision"])
def test_modality_derivation_agrees(modality: str) -> None:
    for task in copier_task_choices(modality):
        assert cookiecutter_defaults(task=task)["__modality"] == modality
    default_task = copier_default("task", modality=modality)
    assert default_task in copier_task_choices(modality)


def test_default_task_and_modality_agree() -> None:
    defaults = cookiecutter_defaults()
    assert defaults["task"] == copier_default(
        "task", modality=copier_questions()["modality"]["default"]
    )
    assert defaults["__modality"] == copier_questions()["modality"]["default"]


@pytest.mark.parametrize(
    ("project_name", "slug"),
    [
        ("Flywheel Demo", "flywheel_demo"),
        ("Détection d'objets", "detection_d_objets"),
        ("  Spaces -- and   dashes  ", "spaces_and_dashes"),
        ("Straße über Ærø", "strasse_uber_aero"),
        ("3D Vision", "ml_3d_vision"),
        ("日本語", "ml_project"),
    ],
)
def test_slug_and_package_defaults_agree(project_name: str, slug: str) -> None:
    cookie = cookiecutter_defaults(project_name=project_name)
    assert cookie["project_slug"] == slug
    assert copier_default("project_slug", project_name=project_name) == slug
    assert cookie["package_name"] == copier_default("package_name", project_slug=slug) == slug


@pytest.mark.parametrize("name", ["project_name", "description", "author_name", "author_email"])
def test_same_free_text_defaults(name: str) -> None:
    assert cookiecutter_json()[name] == copier_questions()[name]["default"]


def test_every_cookiecutter_question_has_a_prompt() -> None:
    prompts = cookiecutter_json()["__prompts__"]
    assert set(prompts) == {k for k in cookiecutter_json() if not k.startswith("_")}


def test_reserved_names_cover_the_standard_library_and_keywords() -> None:
    computed = {name: spec for name, spec in copier_yml().items() if not name.startswith("_")}
    reserved = set(yaml.safe_load(computed["reserved_module_names"]["default"]))
    keywords = set(yaml.safe_load(computed["python_keywords"]["default"]))
    stdlib = {name.lower() for name in sys.stdlib_module_names if not name.startswith("_")}
    assert stdlib <= reserved
    assert {"torch", "mlflow", "test", "transformers"} <= reserved
    assert set(keyword.kwlist) - {"False", "None", "True"} == keywords
