# One-command set-up: every target below creates .venv first if needed.
#   make demo   - MNP against DevNet on the bundled Pendigits data (the main job)
#   make test   - the test suite (what CI runs); needs no data beyond the clone
#   make docs   - the documentation site into docs/_build/html (warnings are errors; notebooks not run)
#   make dist   - build the sdist and wheel into dist/ and check them with twine
# TORCH is the torch requirement and its pip options. The default takes torch 2.13.0 from
# wherever pip finds it: the CPU build where pip has a local CPU wheel (our machines and CI),
# PyPI's build elsewhere (on Linux the CUDA one, about 6 GB with its nvidia packages).
# The CPU build anywhere (PyTorch's CPU wheel index):
#   make install TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
DEEPOD ?= deepod==0.4.1
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.deepod-mnp-installed
DOCS_STAMP = $(VENV)/.deepod-mnp-docs-installed

.PHONY: install demo test docs lint dist clean

install: $(STAMP)

# deepod 0.4.1 declares torch<1.13.1, which no resolver can combine with torch 2:
# install torch first, deepod without its dependencies, then this package (which
# lists deepod's real runtime dependencies itself). pip's last step prints a red
# "ERROR: ... deepod 0.4.1 requires torch<1.13.1": that is the stale pin, expected.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet --no-deps $(DEEPOD)
	$(PY) -m pip install --quiet -e ".[dev]"
	@echo "(a pip ERROR about deepod's torch<1.13.1 pin above is expected: docs/getting-started.md, 'Install')"
	$(PY) -c "from importlib.metadata import version as v; import torch; print('deepod-mnp', v('deepod-mnp'), '| torch', torch.__version__, '| deepod', v('deepod'))"
	touch $(STAMP)

demo: install
	$(VENV)/bin/deepod-mnp demo

test: install
	DEEPOD_MNP_QUICK=1 $(PY) -m pytest -q tests --nbmake notebooks

$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[docs]"
	touch $(DOCS_STAMP)

# -E: read every page again; -W --keep-going: every warning is reported, and fails the build
docs: $(DOCS_STAMP)
	rm -rf docs/generated
	$(PY) -m sphinx -W --keep-going -E -q -b html docs docs/_build/html
	@echo "docs: docs/_build/html/index.html"

lint: install
	$(PY) -m ruff check deepod_mnp tests

dist: install
	$(PY) -m pip install --quiet build twine
	rm -rf dist
	$(PY) -m build
	$(PY) -m twine check --strict dist/*

clean:
	rm -rf $(VENV) build dist *.egg-info docs/_build docs/generated docs/notebooks docs/_*.md
