"""Facts fixed when the project was generated from the ML Flywheel template."""

TASK = "{{ cookiecutter.task }}"
MODALITY = "{{ cookiecutter.__modality }}"
LICENSE = "{{ cookiecutter.license }}"
SLUG = "{{ cookiecutter.project_slug }}"
