# Two entry points: `make demo` (the whole pipeline on the bundled demo corpus) and `make test`.
# Both create ./.venv on first use and install curate with the pinned versions in constraints.txt.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1

.PHONY: demo test lint

$(STAMP): setup.cfg pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[dev]' -c constraints.txt
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/curate demo -o demo-out

# pytest exits 5 when it collects no test; that is not a failure of the install.
test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider tests; rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 5 ] || exit $$rc

lint: $(STAMP)
	$(VENV)/bin/ruff check curate tests tools
