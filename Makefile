# clapsearch: `make demo` sets up and runs the main job, `make test` sets up and runs the tests.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PEERS := msclap==1.3.4 laion-clap==1.1.7 torchlibrosa==0.1.0

export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install test test-fast demo lint bench bench-serve clean browser-deps

$(STAMP): pyproject.toml Makefile
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: the CPU wheel on disk; an unpinned spec pulls GBs of CUDA packages.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev,parity]'
	# The reference systems' own code for the parity tests (docs/checkpoints.md), without their
	# pinned dependencies (torchaudio, torchvision, numpy<2 would break this torch).
	$(BIN)/pip install -q --no-deps $(PEERS)
	# laion-clap's wheel also installs a top-level `tests` package that shadows ours.
	$(BIN)/python -c "import pathlib, shutil, sysconfig; \
	  t = pathlib.Path(sysconfig.get_paths()['purelib'], 'tests'); \
	  (t / 'check_ckpt.py').exists() and shutil.rmtree(t)"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP) browser-deps
	$(BIN)/python -m pytest -q -ra

# The browser test (tests/test_server_browser.py) drives Debian's Chromium with Playwright;
# no browser is ever downloaded by Playwright.
browser-deps:
	@command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -ra -m "not slow"

demo: $(STAMP)
	$(BIN)/python -m clapsearch.demo

lint: $(STAMP)
	$(BIN)/ruff check clapsearch indexer trainer tests benchmarks
	$(BIN)/ruff format --check clapsearch indexer trainer tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_features.py
	$(BIN)/python benchmarks/bench_embed.py

bench-serve: $(STAMP)
	nice -n 10 $(BIN)/python benchmarks/bench_serve.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

# --- the packaged offline default model (docs/model-card.md) ---------------------------------
# Debian tools for the generated part of the corpus; data in data/default-model (gitignored).
DEFAULT_MODEL_APT := espeak-ng fluidsynth fluid-soundfont-gm sox
DEFAULT_MODEL_DATA ?= data/default-model

.PHONY: default-model default-model-deps default-model-data
default-model-deps:
	@if ! command -v espeak-ng >/dev/null || ! command -v fluidsynth >/dev/null || \
	    ! command -v sox >/dev/null || [ ! -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ]; then \
	  apt-get update && apt-get install -y $(DEFAULT_MODEL_APT); fi

# Real recordings from Debian packages (downloaded with apt-get download, unpacked, never
# installed) into $(DEBIAN_SOUNDS); licences and origins in its harvest.json.
DEBIAN_SOUNDS ?= /work/cache/debian-sounds

default-model-data: $(STAMP) default-model-deps
	@test -d $(DEBIAN_SOUNDS)/pkgs || apt-get update
	nice -n 10 $(BIN)/python -m trainer.data_prep.harvest_debian --fetch --cache $(DEBIAN_SOUNDS)
	nice -n 10 $(BIN)/python -m trainer.data_prep.build_default_data --out $(DEFAULT_MODEL_DATA) \
	    --debian $(DEBIAN_SOUNDS)/manifest.jsonl

# Four phases, exactly as the shipped model was trained (docs/model-card.md, "Training"):
# 5 epochs, then resumed to 9, 13 and 30 epochs (warm restarts of the cosine) with lighter
# augmentation.
DEFAULT_MODEL_LIGHT := --set data.augment.reverb_p=0.1 \
    --set data.augment.background_p=0.1 --set data.augment.band_limit_p=0.2 \
    --set data.augment.codec_p=0.05 --set data.augment.bit_depth_p=0.05

default-model: default-model-data
	nice -n 10 $(BIN)/clapsearch train --config configs/default_model.yaml
	nice -n 10 $(BIN)/clapsearch train --config configs/default_model.yaml --resume --override \
	    --set epochs=9 $(DEFAULT_MODEL_LIGHT)
	nice -n 10 $(BIN)/clapsearch train --config configs/default_model.yaml --resume --override \
	    --set epochs=13 $(DEFAULT_MODEL_LIGHT)
	nice -n 10 $(BIN)/clapsearch train --config configs/default_model.yaml --resume --override \
	    --set epochs=30 $(DEFAULT_MODEL_LIGHT)
	$(BIN)/python -m trainer.data_prep.package_default_model runs/default_model/last
	$(BIN)/python -m trainer.data_prep.evaluate_default --model clapsearch/assets/default_model
