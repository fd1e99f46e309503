"""Secrets stay out of git: .gitignore, `make init`'s refusal and the offline secret scanner."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from helpers import Baked, git

# What a user's machine gathers in a project with cloud infrastructure: none of it is code.
LOCAL_SECRETS = [
    ".env",
    ".env.production",
    "terraform.tfstate",
    "infra/terraform/terraform.tfstate",
    "infra/terraform/terraform.tfstate.backup",
    "infra/terraform/terraform.tfvars",
    "infra/terraform/plan.tfplan",
    "infra/terraform/.terraform/providers/registry/provider.bin",
    "keys/deploy.pem",
]
# Example values from the AWS documentation: shaped like real keys, valid nowhere.
AWS_KEYS = (
    "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"
    "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"
)


@pytest.fixture
def aws_project(template: Path, cookies_session) -> Iterator[Baked]:
    result = cookies_session.bake(
        extra_context={"cloud": "aws", "project_name": "Infra Demo"}, template=str(template)
    )
    assert result.exit_code == 0, result.exception
    project = Baked(result.project_path)
    for relpath in LOCAL_SECRETS:
        path = project.path / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(AWS_KEYS, encoding="utf-8")
    yield project
    shutil.rmtree(project.path, ignore_errors=True)


def test_make_init_commits_the_project_but_no_secret(aws_project: Baked) -> None:
    result = aws_project.run("make", "init")
    assert result.returncode == 0, result.stderr
    committed = set(git("ls-files", cwd=aws_project.path).splitlines())
    assert committed & set(LOCAL_SECRETS) == set()
    assert {"Makefile", "params.yaml", "infra/terraform/terraform.tfvars.example"} <= committed
    assert git("status", "--porcelain", "--ignored", cwd=aws_project.path).count("!!") >= 5


def test_make_init_refuses_secrets_that_gitignore_lets_through(aws_project: Baked) -> None:
    # A user who trimmed .gitignore: the first commit must still not carry state or keys.
    (aws_project.path / ".gitignore").write_text("/.venv/\n", encoding="utf-8")
    result = aws_project.run("make", "init")
    assert result.returncode != 0
    error = next(line for line in result.stderr.splitlines() if line.startswith("error:"))
    for name in (
        ".env",
        "terraform.tfstate",
        "infra/terraform/terraform.tfvars",
        "keys/deploy.pem",
    ):
        assert name in error
    assert "add them to .gitignore" in error
    assert git("ls-files", cwd=aws_project.path) == ""
    assert aws_project.run("git", "rev-parse", "--verify", "HEAD").returncode != 0


def test_terraform_shows_remote_state_and_an_example_variables_file(aws_project: Baked) -> None:
    versions = aws_project.text("infra/terraform/versions.tf")
    assert '# backend "s3" {' in versions
    assert "-migrate-state" in versions
    example = aws_project.text("infra/terraform/terraform.tfvars.example")
    assert 'bucket_name          = "infra-demo-artifacts"' in example


def test_secret_scanner_passes_the_project_and_catches_a_planted_key(aws_project: Baked) -> None:
    hooks = {
        hook["id"]
        for repo in yaml.safe_load(aws_project.text(".pre-commit-config.yaml"))["repos"]
        for hook in repo["hooks"]
    }
    assert "detect-secrets" in hooks
    for relpath in LOCAL_SECRETS:
        (aws_project.path / relpath).unlink()
    scanner = str(Path(sys.executable).with_name("detect-secrets"))
    clean = aws_project.run(scanner, "scan", "--all-files", ".")
    assert clean.returncode == 0, clean.stderr
    assert json.loads(clean.stdout)["results"] == {}  # no false alarm blocks the first commit

    (aws_project.path / "src" / "settings.txt").write_text(AWS_KEYS, encoding="utf-8")
    planted = json.loads(aws_project.run(scanner, "scan", "--all-files", ".").stdout)["results"]
    assert [finding["type"] for finding in planted["src/settings.txt"]] == ["AWS Access Key"]
