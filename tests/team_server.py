"""A team's tracking stores on 127.0.0.1 for the suite: a real PostgreSQL (Debian's server
binaries, which `make setup` installs with apt where it can) and moto's S3 server for the bucket.

PostgreSQL's `initdb` refuses to run as root: as root, the cluster belongs to the `postgres`
user the Debian package creates, in a folder of its own directly under /tmp.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers import background, free_port

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


def _run(command: list[str], log: Path | None = None) -> None:
    """A PostgreSQL program; its failure names the command with its output and the server log."""
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        server_log = log.read_text(errors="replace") if log and log.is_file() else ""
        raise RuntimeError(f"{command[0]} failed:\n{done.stdout}{done.stderr}{server_log}")


@dataclass(frozen=True)
class Postgres:
    url: str  # SQLAlchemy's, for MLflow (psycopg2)
    port: int
    programs: Path

    def query(self, sql: str, database: str = "mlflow") -> str:
        """One psql query's unaligned output."""
        psql = [str(self.programs / "psql"), "-h", "127.0.0.1", "-p", str(self.port)]
        done = subprocess.run(
            [*psql, "-U", "postgres", "-d", database, "-tAc", sql],
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    def create(self, database: str) -> str:
        """A new empty database on this server, and its SQLAlchemy URL."""
        createdb = [str(self.programs / "createdb"), "-h", "127.0.0.1", "-p", str(self.port)]
        subprocess.run([*createdb, "-U", "postgres", database], check=True, capture_output=True)
        return self.url.rsplit("/", 1)[0] + f"/{database}"


@contextmanager
def postgres() -> Iterator[Postgres]:
    """A PostgreSQL server with an empty `mlflow` database, stopped and removed afterwards."""
    programs = postgres_bin()
    # /tmp itself: pytest's folders (and a TMPDIR) may be private to root.
    folder = Path(tempfile.mkdtemp(prefix="flywheel-postgres-", dir="/tmp"))
    data, port, log = folder / "data", free_port(), folder / "server.log"
    try:
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres", "postgres")
        initdb = [str(programs / "initdb"), "-D", str(data), "--auth=trust", "-U", "postgres"]
        _run(_as_cluster_owner(initdb))
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"
        start = [str(programs / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log)]
        _run(_as_cluster_owner([*start, "-w", "start"]), log)
        create = [str(programs / "createdb"), "-h", "127.0.0.1", "-p", str(port)]
        _run([*create, "-U", "postgres", "mlflow"], log)
        yield Postgres(f"postgresql+psycopg2://postgres@127.0.0.1:{port}/mlflow", port, programs)
    finally:
        stop = [str(programs / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]
        subprocess.run(_as_cluster_owner(stop), check=False, capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def s3_server() -> Iterator[str]:
    """moto's S3 server with an empty bucket BUCKET; its endpoint URL."""
    endpoint = f"http://127.0.0.1:{free_port()}"
    server = [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1"]
    server += ["-p", endpoint.rsplit(":", 1)[1]]
    with background(server, Path(tempfile.gettempdir()), {}, f"{endpoint}/moto-api/"):
        bucket_client(endpoint).create_bucket(Bucket=BUCKET)
        yield endpoint


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
