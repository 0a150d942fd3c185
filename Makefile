# kizuna: make demo | make test | make bench | make lint
# Each target creates .venv if it is missing and installs the project into it.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.kizuna-installed

.PHONY: demo test bench lint venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/kizuna lunar land --out demo-out --seed 1
	@echo "Open demo-out/report.html"

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/lunar_nav.py
	$(BIN)/python benchmarks/lunar_identify.py
	$(BIN)/python benchmarks/lunar_lola_detection.py
	$(BIN)/python benchmarks/lunar_polar.py
	$(BIN)/python benchmarks/lunar_surface.py
	$(BIN)/python benchmarks/ssa.py
	$(BIN)/python benchmarks/gnss.py
	$(BIN)/python benchmarks/eo.py

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

clean:
	rm -rf demo-out .pytest_cache build
