from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from helpers import (
    PYCACHE,
    TASKS,
    TEMPLATE_ROOT,
    Baked,
    bake_copier,
    combination_id,
    full_matrix,
    pairwise_matrix,
    snapshot_template,
)
from project_env import ensure_project_env, project_requirements

# Bakes of the matrix, once per combination and worker process.
_BAKES: dict[str, tuple[Baked, Baked]] = {}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--full-matrix",
        action="store_true",
        help="bake every combination of options instead of a pairwise covering set",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Every process the suite starts keeps its bytecode under PYCACHE, also where the calling
    shell sets PYTHONDONTWRITEBYTECODE: otherwise each of the hundreds of processes that import
    torch, transformers and mlflow would compile them again."""
    os.environ["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


# The controller's build of the shared project environment, while the workers start, and its
# output (a failure is reported by the fixture, which builds again; this says what went wrong).
_BUILDS: list[subprocess.Popen[bytes]] = []
BUILD_LOG = PYCACHE.parent / "project-env-build.log"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under xdist the controller, idle otherwise, builds the project environment (what the
    `project_bin` fixture would build on first use) while the workers start on the bakes that
    need none; a test that needs it waits on its lock. In a process of its own: cookiecutter
    changes the working directory while it bakes, and a worker started meanwhile would take the
    template folder for its own. Its failure is left to the fixture, which reports it."""
    if getattr(session.config.option, "numprocesses", None) and not hasattr(
        session.config, "workerinput"
    ):
        # Bytecode of earlier runs' temporary projects, which nothing imports again (but that of
        # this checkout's own environments, where it lies in the temporary folder too).
        temporary = PYCACHE / Path(tempfile.gettempdir()).relative_to("/")
        keep = PYCACHE / TEMPLATE_ROOT.relative_to("/")
        for folder in temporary.glob("*"):
            if folder not in keep.parents and folder != keep:
                shutil.rmtree(folder, ignore_errors=True)
        build = [sys.executable, str(Path(__file__).with_name("project_env.py")), "--build"]
        BUILD_LOG.parent.mkdir(parents=True, exist_ok=True)
        with BUILD_LOG.open("w") as log:
            _BUILDS.append(subprocess.Popen(build, stdout=log, stderr=subprocess.STDOUT))


def pytest_sessionfinish(session: pytest.Session) -> None:
    for build in _BUILDS:  # not left half-installed by a short run
        build.wait()


# The order workers take test files in: the bakes first (they need no project environment, which
# the controller builds meanwhile), then the long trainings, then the short checks, which fill in
# at the end while the other worker finishes its last long test.
FILE_ORDER = (
    "test_bake_matrix.py",
    "test_generated_project.py",
    "test_pipeline.py",
    "test_real_data.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return FILE_ORDER.index(name) if name in FILE_ORDER else len(FILE_ORDER)

    items.sort(key=rank)  # stable: each file keeps its own order


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


@pytest.fixture
def pair(
    combination: dict[str, str],
    template: Path,
    cookies_session,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Baked, Baked]:
    """The same answers baked by cookiecutter and by copier (once per combination and process)."""
    key = combination_id(combination)
    if key not in _BAKES:
        result = cookies_session.bake(extra_context=combination, template=str(template))
        assert result.exit_code == 0, result.exception
        copier_dst = tmp_path_factory.mktemp("copier") / result.project_path.name
        bake_copier(template, combination, copier_dst)
        _BAKES[key] = (Baked(result.project_path), Baked(copier_dst))
    return _BAKES[key]
