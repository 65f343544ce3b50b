# Two entry points: `make run` (the main job) and `make test` (the offline test suite).
# Both create .venv and install the project on first use.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

DATA  ?= dair-ai/emotion
MODEL ?= distilbert-base-uncased
OUT   ?= runs/emotion
RUN_ARGS ?=

.PHONY: run test install clean

$(STAMP): setup.cfg pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test,umap]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/tfemotion run --data "$(DATA)" --model "$(MODEL)" --out "$(OUT)" $(RUN_ARGS)

test: $(STAMP)
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
