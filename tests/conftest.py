from __future__ import annotations

from pathlib import Path

import pytest
from helpers import (
    TASKS,
    Baked,
    combination_id,
    full_matrix,
    pairwise_matrix,
    snapshot_template,
)
from project_env import ensure_project_env, project_requirements


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--full-matrix",
        action="store_true",
        help="bake every combination of options instead of a pairwise covering set",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "combination" in metafunc.fixturenames:
        full = metafunc.config.getoption("--full-matrix")
        combinations = full_matrix() if full else pairwise_matrix()
        metafunc.parametrize(
            "combination",
            [
                pytest.param(
                    c, id=combination_id(c), marks=pytest.mark.xdist_group(combination_id(c))
                )
                for c in combinations
            ],
        )


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template's working tree, committed into a throwaway git repository."""
    return snapshot_template(tmp_path_factory.mktemp("template"))


@pytest.fixture(scope="session")
def projects(template: Path, cookies_session) -> dict[str, Baked]:
    baked = {}
    for task in TASKS:
        result = cookies_session.bake(
            extra_context={"task": task, "project_name": f"Demo {task}"}, template=str(template)
        )
        assert result.exit_code == 0, result.exception
        baked[task] = Baked(result.project_path)
    return baked


@pytest.fixture(scope="session")
def project_bin(projects: dict[str, Baked]) -> Path:
    return ensure_project_env(project_requirements(p.path for p in projects.values()))
