from .cli import app

app(prog_name="{{ cookiecutter.package_name }}")
