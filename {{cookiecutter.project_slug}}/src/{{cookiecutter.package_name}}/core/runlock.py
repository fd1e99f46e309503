"""One `prepare`, `train` or `evaluate` at a time in a project.

They read and replace the same data, model and metrics: a second one started while another runs
stops at once, naming the one that runs. The lock is the operating system's (`flock`), released
when its holder exits, however it exits: the lock of a killed run is simply taken over.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..tracking.runs import is_main_process
from .errors import FlywheelError
from .paths import LOCK_FILE


@contextmanager
def exclusive(verb: str, path: Path = LOCK_FILE) -> Iterator[None]:
    if not is_main_process():
        yield  # torchrun's other processes are part of rank 0's run, which holds the lock
        return
    import fcntl

    with path.open("a+", encoding="utf-8") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            holder = file.read().strip() or "another run"
            raise FlywheelError(
                f"{holder} is running in this project: wait for it to finish, or stop it"
            ) from None
        file.seek(0)
        file.truncate()
        file.write(f"`{verb}` (pid {os.getpid()})")
        file.flush()
        try:
            yield
        finally:
            file.seek(0)
            file.truncate()
