"""The {{ cookiecutter.package_name }} package: a {{ cookiecutter.task }} project built on ML Flywheel."""

__version__ = "0.1.0"
