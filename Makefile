# infergraph: the two commands are `make demo` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.demo-installed
# pytest workers per suite (pytest-xdist; 0 runs in one process): the suite mostly waits on
# the servers it starts, so three workers keep two cores busy. A file's tests share a worker.
PYTEST_WORKERS ?= 3
PYTEST := -p no:cacheprovider -n $(PYTEST_WORKERS) --dist loadfile
# the suite starts hundreds of Python processes: where PYTHONDONTWRITEBYTECODE is set, each
# would compile infergraph (and pytest each worker's test modules) again, so the tests cache it
TEST_ENV := PYTHONDONTWRITEBYTECODE=
# the run on the lowest dependencies: every test that runs in the suite's own process (the
# libraries' behaviour at their lowest versions); the tests that start servers and clients
# (marked slow) and those that run in environments of their own run on the newest only
LOWEST := -m "not slow and not own_environment"

.PHONY: demo test test-setup test-suite test-lowest envs check venv services proto proto-check bench clean

define new_venv
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; set PYTHON=/path/to/python3.11" >&2; exit 2; }
	@[ -x $(BIN)/python ] || { echo "[make] creating $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@$(BIN)/pip install -q --upgrade pip
endef

# everything: the package with all its extras, and the dev groups (tests, linters, protoc)
$(STAMP): pyproject.toml
	$(new_venv)
	@echo "[make] installing infergraph[all] and the dev dependency groups into $(VENV)"
	$(BIN)/pip install --progress-bar off -e '.[all]' --group dev
	touch $(STAMP) $(DEMO_STAMP)

# only what the demo needs
$(DEMO_STAMP): pyproject.toml
	$(new_venv)
	@echo "[make] installing infergraph[sklearn] into $(VENV)"
	$(BIN)/pip install --progress-bar off -e '.[sklearn]'
	touch $(DEMO_STAMP)

venv: $(STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/python -m infergraph.demo

services:
	bash scripts/install-services.sh

# the other environments the tests use, built (once, then cached) before pytest starts
envs: $(STAMP)
	bash scripts/peer-venvs.sh seldon
	bash scripts/peer-venvs.sh kserve
	bash scripts/ecosystem-venvs.sh
	@if command -v podman >/dev/null && command -v debootstrap >/dev/null && [ "$$(id -u)" = 0 ]; then \
		echo "[make] the runtime image tests/kube/test_podman_pod.py runs (scripts/build-runtime-image.sh, cached)"; \
		bash scripts/build-runtime-image.sh >/dev/null; \
	else \
		echo "[make] no podman, debootstrap or root here: the runtime image is not built, and tests/kube/test_podman_pod.py says what it needs"; \
	fi

test-suite: $(STAMP) services envs
	$(TEST_ENV) $(BIN)/python -m pytest -q $(PYTEST) $(PYTEST_ARGS)

# the whole suite again on the lowest versions pyproject.toml allows (the newest are .venv's)
test-lowest: $(STAMP) services envs
	bash scripts/lowest-venv.sh
	$(TEST_ENV) .venv-lowest/bin/python -m pytest -q $(PYTEST) $(LOWEST) $(PYTEST_ARGS)

# everything the tests use, installed and built before pytest starts
test-setup: $(STAMP) services envs
	bash scripts/lowest-venv.sh

# set-up first, then the suite on the newest and on the lowest dependencies, each timed
test:
	@t0=$$(date +%s); \
	$(MAKE) --no-print-directory test-setup || exit $$?; \
	t1=$$(date +%s); echo "[make] set-up took $$((t1 - t0)) s"; \
	echo "[make] the suite on the newest dependencies ($(VENV))"; \
	$(TEST_ENV) $(BIN)/python -m pytest -q $(PYTEST) $(PYTEST_ARGS) || exit $$?; \
	t2=$$(date +%s); echo "[make] the suite on the newest dependencies took $$((t2 - t1)) s"; \
	echo "[make] the suite on the lowest allowed dependencies (.venv-lowest)"; \
	$(TEST_ENV) .venv-lowest/bin/python -m pytest -q $(PYTEST) $(LOWEST) $(PYTEST_ARGS) || exit $$?; \
	t3=$$(date +%s); echo "[make] the suite on the lowest dependencies took $$((t3 - t2)) s"; \
	echo "[make] set-up $$((t1 - t0)) s; tests $$((t3 - t1)) s ($$((t2 - t1)) s + $$((t3 - t2)) s)"

check: $(STAMP)
	$(BIN)/ruff format --check src tests bench tools
	$(BIN)/ruff check src tests bench tools
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python tools/gen_proto.py --check

proto: $(STAMP)
	$(BIN)/python tools/gen_proto.py

proto-check: $(STAMP)
	$(BIN)/python tools/gen_proto.py --check

bench: $(STAMP)
	bash scripts/peer-venvs.sh all
	$(BIN)/python bench/component.py
	$(BIN)/python bench/graph.py
	$(BIN)/python bench/v2.py

clean:
	rm -rf $(VENV) .venv-lowest .venv-eco-* .pytest_cache .mypy_cache .ruff_cache
