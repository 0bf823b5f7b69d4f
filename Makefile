# Two commands do all set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
DEMO_WS ?= demo-workspace

.PHONY: demo test install clean bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/augment demo --workspace $(DEMO_WS)

# The MusiCNN tests read the musicnn 0.1.0 wheel (pretrained weights): fetched once into the cache, verified after.
test: $(STAMP)
	$(VENV)/bin/classify weights fetch musicnn
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) $(DEMO_WS) build *.egg-info
