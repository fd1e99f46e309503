# ML Flywheel: the template's own commands. `make` alone lists them.
.DEFAULT_GOAL := help
VENV ?= .venv
BIN := $(VENV)/bin
# Bake tests run in parallel; 2 workers fit the 2-core CI machine.
WORKERS ?= 2
# uv installs in seconds what pip takes minutes for; the same release the generated projects use.
UV_VERSION := 0.13.9

.PHONY: help setup demo test lint bench docs clean

help: ## List the available commands
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-8s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# The real-data tests speak their audio with espeak-ng, and the team tracking server test runs
# PostgreSQL: both installed with apt-get (as root, or with sudo -n) where missing; elsewhere
# install them yourself, or those tests fail naming them.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo -n)
APT_PACKAGES := espeak-ng postgresql

# Exactly the versions of uv.lock (--locked: a lock that no longer matches pyproject.toml stops
# here; `uv lock` updates it). Only the dependencies go in: the template is not a package, and
# an editable install's .pth import would slow every Python start, the bake hooks' included.
$(BIN)/.installed: pyproject.toml uv.lock
	{ command -v espeak-ng && ls /usr/lib/postgresql/*/bin/initdb; } >/dev/null 2>&1 \
		|| ! command -v apt-get >/dev/null 2>&1 \
		|| $(SUDO) apt-get install -y -qq $(APT_PACKAGES) >/dev/null \
		|| { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $(APT_PACKAGES) >/dev/null; } \
		|| echo "warning: $(APT_PACKAGES) could not be installed: the real-data and team server tests need them" >&2
	python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "uv==$(UV_VERSION)"
	UV_PROJECT_ENVIRONMENT=$(VENV) $(BIN)/uv sync --quiet --locked --no-install-project
	touch $@

setup: $(BIN)/.installed ## Create .venv with cookiecutter, copier and the test tools; install espeak-ng and PostgreSQL

demo: setup ## Bake the default project into demo/, install it, train and try its model
	rm -rf demo
	$(BIN)/cookiecutter --no-input --output-dir demo .
	index="$$($(BIN)/python tests/torch_index.py)" && \
		if [ -n "$$index" ]; then echo "PyTorch's index is unreachable: torch from a local index"; fi; \
		$(MAKE) -C demo/flywheel_demo setup train predict TORCH_INDEX="$$index"

test: setup ## Run the whole test suite (what CI runs)
	$(BIN)/python -m pytest -n $(WORKERS) --dist loadgroup $(PYTEST_ARGS)

# The template folder is Jinja, not Python: the bake tests lint what it renders to.
LINTED := hooks migrations scripts tests

lint: setup ## ruff, mypy and codespell on the template's own code (hooks, migrations, scripts, tests)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy
	$(BIN)/codespell

bench: setup ## Time bakes with each engine and a full matrix bake
	$(BIN)/python scripts/benchmark.py

docs: setup ## Serve the documentation site on http://127.0.0.1:8000 (docs/, mkdocs.yml)
	$(BIN)/mkdocs serve

clean: ## Remove the environment, demo and caches
	rm -rf $(VENV) demo site .cache .pytest_cache .ruff_cache
