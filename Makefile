# The README's two commands: `make demo` and `make test`. Both set up .venv from pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

INTEROP := tests/interop/node_modules/.package-lock.json

.PHONY: test demo lint clean interop

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .

# The npm implementations the interop tests compare against (tests/test_interop_npm.py),
# pinned by tests/interop/package-lock.json and installed here, at setup, never by a test.
# Without node/npm (or the registry) those tests skip with their reason; CI requires them.
$(INTEROP): tests/interop/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix tests/interop --no-audit --no-fund --loglevel=error \
		|| echo "npm ci failed: the npm interop tests will skip"; \
	else echo "npm not installed: the npm interop tests will skip"; fi

interop: $(INTEROP)

test: $(STAMP) lint interop
	$(BIN)/python -m pytest

demo: $(STAMP)
	$(BIN)/python examples/demo.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache tests/interop/node_modules
