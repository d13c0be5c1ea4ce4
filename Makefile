# aigate: common tasks. `make test` is what CI runs (after `make lint`).

PYTHON ?= python3
CARGO ?= cargo
VENV ?= .venv
AIGATE_BIN ?= $(or $(CARGO_TARGET_DIR),target)/debug/aigate

.PHONY: run build test e2e lint bench

run:
	$(CARGO) run --release -- serve --config config/demo.toml

build:
	$(CARGO) build --release

test:
	$(CARGO) test
	$(MAKE) e2e

# ---- end-to-end tests (tests/e2e): the real binary, the official SDKs, fake upstreams
e2e:
	$(CARGO) build
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check -r tests/e2e/requirements.txt
	AIGATE_BIN=$(abspath $(AIGATE_BIN)) $(VENV)/bin/python -m pytest tests/e2e -q

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

# ---- benchmark (BENCHMARKS.md): never part of `make test`. Installs wrk and
# nginx with apt-get when missing, builds release, takes about 11 minutes.
# BENCH_ARGS: --quick (3 s runs), --seconds N, --soak 600, --no-build, --out FILE
bench:
	$(PYTHON) bench/run $(BENCH_ARGS)
