# Set-up and everyday commands. `make demo` and `make test` create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export DVC_NO_ANALYTICS := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install demo demo-digits quality test test-fast lint bench bench-gpu clean

BENCH_STAMP := $(VENV)/.installed-bench

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -c constraints.txt -e '.[test]'
	touch $(STAMP)

# The benchmark comparisons (video-diffusion-pytorch, matplotlib) only for `make bench` and the full
# test suite, which runs every benchmark at its smallest size.
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install -c constraints.txt -e '.[test,bench]'
	touch $(BENCH_STAMP)

install: $(STAMP)  ## create/update .venv with vdlib, its tests and its pinned dependencies

demo: install  ## run the whole pipeline on the built-in demo video
	dvc repro

# The fine-grained dataset: real handwritten digits (scikit-learn's scans) drifting over a dark
# background, ten labels told apart only by the strokes' shape, as a DVC experiment named "digits";
# the base model trained 4800 steps instead of the demo's 3600 and guided at 4 on every step (its
# labels are worth little to the loss at the demo's budget).
DIGITS := -S fetch.source=data/digits.mkv -S 'labels.tables=[labels/tables/digits.csv]' \
	-S render.base.guidance=4 -S render.base.guidance_share=1 -S base.steps=4800
DIGITS_EXTRA ?=

demo-digits: install  ## the pipeline on the fine-grained dataset (handwritten digits), as experiment "digits"
	$(BIN)/vdlib digits-video -o data/digits.mkv --table labels/tables/digits.csv
	dvc exp run -n digits $(DIGITS) $(DIGITS_EXTRA)

# A real GPU run: bigger model, 64-frame clips at 10 fps, long training, 128-frame videos.
QUALITY := \
	-S extract.resolution=128 -S extract.fps=10 \
	-S train.compile=true -S train.workers=4 -S train.ckpt_every=1000 -S train.log_every=50 \
	-S train.sample_every=5000 \
	-S base.window=64 -S base.skip=0 -S base.steps=50000 -S base.batch=16 -S base.lr=0.0002 \
	-S base.warmup=1000 -S base.ema_decay=0.9999 -S base.model.channels=128 \
	-S 'base.model.mults=[1,2,4]' -S base.model.res_blocks=2 -S 'base.model.spatial_attn_levels=[1,2]' \
	-S base.model.heads=8 \
	-S upsampler.window=16 -S upsampler.skip=0 -S upsampler.steps=30000 -S upsampler.batch=8 \
	-S upsampler.lr=0.0002 -S upsampler.warmup=1000 -S upsampler.ema_decay=0.9999 -S upsampler.crop=64 \
	-S upsampler.model.channels=64 -S 'upsampler.model.mults=[1,2,4]' -S upsampler.model.res_blocks=2 \
	-S upsampler.mapping_channels=64 \
	-S render.frames=128 -S render.base.steps=50 -S render.base.context=16 \
	-S render.upsampler_64.steps=10 -S render.upsampler_128.steps=10 \
	-S render.base.window_frames=null -S render.upsampler_64.window_frames=null \
	-S render.upsampler_128.window_frames=null \
	-S render.upsampler_64.temperature=1 -S render.upsampler_128.temperature=1 \
	-S evaluate.fidelity_clips=16
QUALITY_EXTRA ?=

quality: install  ## the GPU preset as a DVC experiment (add your source: QUALITY_EXTRA="-S fetch.source=...")
	dvc exp run $(QUALITY) $(QUALITY_EXTRA)

test: $(BENCH_STAMP)  ## ruff, then the whole test suite (slow end-to-end tests and benchmark smoke runs included)
	$(BIN)/ruff check vdlib stages tests benchmarks
	YOLO_OFFLINE=1 $(BIN)/python -m pytest

test-fast: install  ## skip the tests marked slow
	YOLO_OFFLINE=1 $(BIN)/python -m pytest -m "not slow"

lint: install
	$(BIN)/ruff check vdlib stages tests benchmarks
	$(BIN)/ruff format --check vdlib stages tests benchmarks

bench: $(BENCH_STAMP)  ## every benchmark (needs `make demo` first): tables + reports/bench/results.json
	$(BIN)/python benchmarks/run.py

# On one GPU of the H100/H200 class, about 6-8 minutes: training throughput and MFU, memory, sampling,
# pose, a tiny CUDA pipeline run and the out-of-memory message (reports/bench/gpu.json). Without a GPU
# it says so in one line.
bench-gpu: install  ## the GPU check and benchmark (reports/bench/gpu.json)
	$(BIN)/python benchmarks/gpu.py

clean:  ## remove the pipeline's outputs and resume states (not the venv)
	rm -rf data/raw data/frames data/labels.parquet data/checked.json reports/labels/preview.gif models/base models/upsampler_* .vdlib
