"""A team's tracking stores on 127.0.0.1 for the suite: a real PostgreSQL (Debian's server
binaries, which `make setup` installs with apt where it can) and moto's S3 server for the bucket.

PostgreSQL's `initdb` refuses to run as root: as root, the cluster belongs to the `postgres`
user the Debian package creates, in a folder of its own under /tmp (pytest's temporary folders
are private to root).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from helpers import free_port

BUCKET = "team-mlflow"
# moto accepts any key; the MLflow server, not the clients, holds them.
S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def postgres_bin() -> Path:
    """The folder of Debian's PostgreSQL server programs (the newest installed major)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name)
    )
    if not found:
        raise RuntimeError(
            "PostgreSQL's server programs are missing (/usr/lib/postgresql/*/bin/initdb): "
            "`make setup` installs Debian's postgresql package with apt; install it yourself "
            "elsewhere"
        )
    return found[-1].parent


def _as_cluster_owner(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextmanager
def postgres() -> Iterator[str]:
    """A PostgreSQL server with an `mlflow` database; its SQLAlchemy URL (psycopg2)."""
    programs = postgres_bin()
    folder = Path(tempfile.mkdtemp(prefix="flywheel-postgres-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    data, port = folder / "data", free_port()
    try:
        initdb = [str(programs / "initdb"), "-D", str(data), "--auth=trust", "-U", "postgres"]
        subprocess.run(_as_cluster_owner(initdb), check=True, capture_output=True)
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"
        start = [str(programs / "pg_ctl"), "-D", str(data), "-o", options, "-w", "start"]
        subprocess.run(
            _as_cluster_owner([*start, "-l", str(folder / "log")]), check=True, capture_output=True
        )
        create = [str(programs / "createdb"), "-h", "127.0.0.1", "-p", str(port)]
        subprocess.run([*create, "-U", "postgres", "mlflow"], check=True, capture_output=True)
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/mlflow"
    finally:
        stop = [str(programs / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]
        subprocess.run(_as_cluster_owner(stop), check=False, capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def s3_server() -> Iterator[str]:
    """moto's S3 server with an empty bucket BUCKET; its endpoint URL."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = Path(sys.executable).with_name("moto_server")
    process = subprocess.Popen(
        [str(server), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2):
                    break
            except OSError:
                assert process.poll() is None, "moto_server exited at start"
                assert time.monotonic() < deadline, "moto_server did not answer in 60 s"
                time.sleep(0.2)
        bucket_client(endpoint).create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=30)


def bucket_client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=S3_CREDENTIALS["AWS_DEFAULT_REGION"],
    )


def bucket_keys(endpoint: str) -> list[str]:
    pages = bucket_client(endpoint).get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]
