"""Shared fixtures: a scratch workspace per session, and one model trained on the embedded data.

Tests run inside a temporary copy of the project's params.yaml, so they never touch the project's
own data/, models/ or MLflow store.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

# The tests never reach a model or dataset hub, as on a machine without network: the libraries
# read these once, when first imported, so before the project's modules import them.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

from {{ cookiecutter.package_name }}.config import Params, load_params

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Trained:
    workspace: Path
    params: Params
    result: object


@pytest.fixture(scope="session", autouse=True)
def workspace(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("workspace")
    shutil.copy(PROJECT_ROOT / "params.yaml", root / "params.yaml")
    previous_cwd, previous_uri = Path.cwd(), os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
    os.chdir(root)
    yield root
    os.chdir(previous_cwd)
    if previous_uri is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = previous_uri


@pytest.fixture(scope="session")
def trained(workspace: Path) -> Trained:
    """prepare, train and evaluate on the embedded default, once per session (seconds on a CPU)."""
    from {{ cookiecutter.package_name }}.data import prepare
    from {{ cookiecutter.package_name }}.evaluate import evaluate
    from {{ cookiecutter.package_name }}.train import train

    params = load_params()
    prepare(params)
    result = train(params)
    evaluate(params)
    return Trained(workspace=workspace, params=params, result=result)
