from __future__ import annotations

from pathlib import Path

import pytest
from helpers import combination_id, full_matrix, pairwise_matrix, snapshot_template


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
