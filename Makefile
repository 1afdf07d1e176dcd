# The maintainer's tasks, run from an activated virtual environment with the test extra
# (`pip install -e '.[test]'`; `docs` needs '.[docs]', `bench` needs '.[bench]').
# CI (.ci/run) runs the same commands, spelled out there.

PYTHON ?= python

.PHONY: check lint types tests quick docs bench

check: lint types tests  ## everything CI checks but the docs build

lint:  ## ruff: errors, imports, bugbear, blind excepts, complexity, unused noqa
	ruff check src tests bench

types:  ## mypy strict over src, tests and bench (the files listed in pyproject.toml)
	mypy

tests:  ## the whole suite, as the README runs it (about 4 minutes on two cores)
	$(PYTHON) -m pytest

quick:  ## the suite without the chaos, slow and browser tests
	$(PYTHON) -m pytest -m "not chaos and not slow and not browser"

docs:  ## the documentation site, failing on any warning
	NO_MKDOCS_2_WARNING=1 mkdocs build --strict

bench:  ## the worker benchmark against RQ, one quick round (drop --quick for the full run)
	$(PYTHON) bench/worker.py --quick
