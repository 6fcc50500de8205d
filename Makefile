# One-command set-up: every target below creates .venv first if needed.
#   make demo   - MNP against DevNet on the bundled Pendigits data (the main job)
#   make test   - the test suite (what CI runs)
# TORCH selects the torch build; the default is the CPU wheel. For CUDA, e.g.
#   make install TORCH="torch==2.5.1 --index-url <your CUDA wheel index>"
PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
DEEPOD ?= deepod==0.4.1
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.deepod-mnp-installed

.PHONY: install demo test lint bench clean

install: $(STAMP)

# deepod 0.4.1 declares torch<1.13.1, which no resolver can combine with torch 2:
# install torch first, deepod without its dependencies, then this package (which
# lists deepod's real runtime dependencies itself).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet --no-deps $(DEEPOD)
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -c "import torch, deepod, deepod_mnp; print('deepod-mnp', deepod_mnp.__version__, '| torch', torch.__version__, '| deepod', deepod.__version__)"
	touch $(STAMP)

demo: install
	$(VENV)/bin/deepod-mnp demo

test: install
	DEEPOD_MNP_QUICK=1 $(PY) -m pytest -q tests --nbmake notebooks

lint: install
	$(PY) -m ruff check deepod_mnp tests

clean:
	rm -rf $(VENV) build dist *.egg-info
