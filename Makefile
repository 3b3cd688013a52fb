# Two commands a user needs: `make app` (serve the web app) and `make test`;
# `make lab` opens the tutorials in JupyterLab with the project's kernel.
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 5006
LAB_PORT ?= 8888
PYTEST_ARGS ?=
# two workers for the two cores; each worker uses one torch thread (tests/conftest.py)
PYTEST_WORKERS ?= 2

.PHONY: setup app lab kernel test lint format assets bench clean-venv lock

setup:
	@VENV=$(VENV) bash scripts/setup_env.sh

app: setup
	$(VENV)/bin/scifm serve --address $(HOST) --port $(PORT)

# The venv as a Jupyter kernel named "scifm" (the tutorials' kernel), inside the venv.
kernel: setup
	$(PY) -m ipykernel install --sys-prefix --name scifm --display-name "Python (scifm)" >/dev/null

lab: kernel
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks --ServerApp.ip=$(HOST) --ServerApp.port=$(LAB_PORT)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: lint
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)

# Rewrite constraints.txt from the venv (run after `make test` passes on new versions).
lock:
	@{ sed -n '1,3p' constraints.txt; $(PY) -m pip freeze --exclude-editable | grep -viE '^(torch|nvidia-|triton|scifm)=='; } > constraints.tmp && mv constraints.tmp constraints.txt
