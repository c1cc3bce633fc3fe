# helm-tfops — set-up and everyday targets. On a fresh machine:
#   make demo   # render charts-example through real Helm 4 and Helm 3 with the plugin
#   make test   # every test: unit, CRD schema, corpus fidelity, real Helm 4.1.4 + 3.16.1, guard scenarios
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: all build helm test demo bench soak lint fmt clean

all: build

build:
	$(CARGO) build --release --bin tfops

# Pinned, checksummed Helm binaries (cached in .cache/helm, git-ignored).
helm:
	scripts/fetch-helm.sh

test: helm
	$(CARGO) test --workspace --all-targets

demo: helm build
	scripts/demo.sh

bench: helm build
	scripts/bench.sh

# Long randomized fault-schedule run of the guard (default test run does fewer).
soak:
	TFOPS_SCHEDULES=10000 $(CARGO) test --release -p tfops-guard --test schedules -- --nocapture

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
	rm -rf .cache
