"""Start-up costs removed from every command: the garbage collector paused while the libraries
load, and a new local MLflow store created by a second process meanwhile."""

from __future__ import annotations

import gc
import sqlite3

import pytest

from {{ cookiecutter.package_name }}.cli import entry_point
from {{ cookiecutter.package_name }}.core import gc_pause
from {{ cookiecutter.package_name }}.tracking import runs


@pytest.fixture
def collector_restored():
    yield
    gc_pause.resume(freeze=False)
    gc.enable()
    gc.unfreeze()


def test_pause_stops_the_collector_and_resume_freezes_and_restarts_it(collector_restored) -> None:
    gc_pause.pause()
    assert not gc.isenabled()
    gc_pause.resume()
    assert gc.isenabled()
    assert gc.get_freeze_count() > 0  # what start-up built is never scanned again


def test_resume_leaves_a_collector_it_did_not_pause_alone(collector_restored) -> None:
    gc.disable()  # the caller's own choice
    gc_pause.pause()
    gc_pause.resume()
    assert not gc.isenabled()


def test_a_command_run_in_process_gives_the_collector_back(capsys) -> None:
    assert entry_point(["info"]) == 0
    assert gc.isenabled()
    assert entry_point(["no-such-verb"]) == 2
    assert gc.isenabled()


def test_a_new_local_store_is_created_by_a_second_process(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///fresh.db")
    runs.create_store_in_background()
    creator = runs._store_creator
    assert creator is not None
    runs._wait_for_store_creation()
    assert creator.returncode == 0
    with sqlite3.connect(tmp_path / "fresh.db") as db:
        names = [name for (name,) in db.execute("SELECT name FROM experiments")]
    assert runs.EXPERIMENT in names
    # An existing store, or a server, needs nothing.
    runs.create_store_in_background()
    assert runs._store_creator is None
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    runs.create_store_in_background()
    assert runs._store_creator is None
