"""The project's command line: `python -m {{ cookiecutter.package_name }} VERB`."""

import platform

import typer

from {{ cookiecutter.package_name }} import __version__
from {{ cookiecutter.package_name }}.project import MODALITY, TASK

app = typer.Typer(
    help="{{ cookiecutter.project_slug }}: {{ cookiecutter.__modality }} {{ cookiecutter.task }}.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def main() -> None:
    """Train, evaluate and serve the {{ cookiecutter.task }} model."""


@app.command()
def info() -> None:
    """Show what this project trains and the environment it runs in."""
    typer.echo(f"package:  {{ cookiecutter.package_name }} {__version__}")
    typer.echo(f"modality: {MODALITY}")
    typer.echo(f"task:     {TASK}")
    typer.echo(f"python:   {platform.python_version()}")
