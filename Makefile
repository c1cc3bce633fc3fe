# helm-tfops — set-up and everyday targets. On a fresh machine:
#   make demo   # the lifecycle on the test cluster: install, the deadlock, the guard, recovery (Helm 4 and 3)
#   make test   # every test: unit, CRD schema, corpus fidelity, real Helm 4.1.4 + 3.16.1, guard scenarios
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: all build helm test demo demo-render bench soak testcluster lint fmt clean

all: build

build:
	$(CARGO) build --release -p helm-tfops --bin tfops -p tfops-testcluster --bin testcluster

# Pinned, checksummed Helm binaries (cached in .cache/helm, git-ignored).
helm:
	scripts/fetch-helm.sh

test: helm
	$(CARGO) test --workspace --all-targets

demo: helm build
	scripts/demo.sh

# The post-renderer alone: every chart of charts-example through real Helm 4 and 3.
demo-render: helm build
	scripts/demo-render.sh

# Figures only (no test asserts timings): post-renderer vs kubectl kustomize, status -A.
bench: helm build
	scripts/bench.sh

# Long randomized runs (the default test run does fewer): the guard against the test API server
# and the tofu-controller simulation (10,000 fault schedules with instant and 10,000 with realistic
# controller timing), the state machine against a model
# of the controller's deletion flow, and the simulation under API faults.
soak:
	TFOPS_SCHEDULES=10000 TFOPS_REALISTIC_SCHEDULES=10000 $(CARGO) test --release -p tfops-guard --test main schedules -- --nocapture
	TFOPS_MACHINE_SIM_CASES=30000 $(CARGO) test --release -p tfops-guard --lib sim_tests
	TFOPS_SIM_SCHEDULES=1000 $(CARGO) test --release -p tfops-testcluster --test main tofu_fault_schedules

# The test API server + tofu-controller simulation as a standalone process (prints a kubeconfig).
SCENARIO ?= crates/tfops-testcluster/scenarios/clean-uninstall.yaml
testcluster: build
	$(CARGO) run -p tfops-testcluster --bin testcluster -- --scenario $(SCENARIO) --job-bin target/release/tfops

lint:
	sh -n plugin/tfops.sh plugin/install-binary.sh plugins/tfops-render/tfops-render.sh
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
	rm -rf .cache
