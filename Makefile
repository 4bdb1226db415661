# driftlab — see README.md. Two commands do all the set-up on a fresh machine:
#   make demo   builds what it needs and runs the built-in baseline scenario
#   make test   builds what it needs and runs the whole test suite
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
GO ?= go
K8S_VERSION ?= 1.37.2
CONTROLLER_TOOLS_VERSION ?= v0.23.0
BIN := $(CURDIR)/bin
CONTROLLER_GEN := $(BIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
DRIFTLAB := $(BIN)/driftlab
SCENARIO ?= scenarios/baseline.yaml
# The example operator, a module of its own as a user's would be (docs/tutorial.md).
EXAMPLE := examples/webapp
OUT ?= runs/demo
# Where the control-plane binaries live (kube-apiserver, kube-controller-manager,
# kube-scheduler); scripts/envtest-assets.sh builds each once (internal/assets).
ASSETS = $$(K8S_VERSION=$(K8S_VERSION) $(CURDIR)/scripts/envtest-assets.sh)

.PHONY: all build demo test unit bench-cache bench-virtual pgo chromium manifests manifests-check envtest-assets controller-gen vet fmt-check clean deploy-manifests chaos

all: build

## build: compile the driftlab CLI into bin/driftlab
build:
	$(GO) build -o $(DRIFTLAB) ./cmd/driftlab

## envtest-assets: build kube-apiserver, kube-controller-manager and kube-scheduler v$(K8S_VERSION) into bin/k8s (once each; honours KUBEBUILDER_ASSETS)
envtest-assets:
	@K8S_VERSION=$(K8S_VERSION) scripts/envtest-assets.sh >/dev/null

## demo: run the built-in baseline scenario on the local backend and print the result
demo: envtest-assets build
	KUBEBUILDER_ASSETS=$(ASSETS) $(DRIFTLAB) run --out $(OUT) $(SCENARIO)

## controller-gen: build the pinned controller-gen into bin/
controller-gen: $(CONTROLLER_GEN)
$(CONTROLLER_GEN):
	@mkdir -p $(BIN)
	GOBIN=$(BIN)/.cg $(GO) install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
	mv $(BIN)/.cg/controller-gen $@ && rm -rf $(BIN)/.cg

## manifests: regenerate deepcopy code and CRD YAML with controller-gen (the reference operator and examples/webapp)
manifests: $(CONTROLLER_GEN)
	$(CONTROLLER_GEN) object paths=./operator/api/...
	$(CONTROLLER_GEN) crd paths=./operator/api/... output:crd:dir=./operator/config/crd
	cd $(EXAMPLE) && $(CONTROLLER_GEN) object paths=./api/... && $(CONTROLLER_GEN) crd paths=./api/... output:crd:dir=./config/crd

## deploy-manifests: regenerate deploy/config (operator CRD copy, ClusterRole from deploy/rbac.go, Deployment)
deploy-manifests: $(CONTROLLER_GEN)
	mkdir -p deploy/config/crd deploy/config/rbac
	cp operator/config/crd/*.yaml deploy/config/crd/
	$(CONTROLLER_GEN) rbac:roleName=driftlab-operator paths=./deploy/ output:rbac:dir=./deploy/config/rbac
	$(GO) run ./deploy/gen --dir deploy/config

## chaos: run SCENARIO on a kind cluster with Chaos Mesh (scripts/chaos.sh; DRY_RUN=1 prints the plan)
chaos:
	SCENARIO=$(SCENARIO) DRY_RUN=$(DRY_RUN) GO=$(GO) scripts/chaos.sh

## manifests-check: fail when the generated files are stale (also a Go test)
manifests-check: $(CONTROLLER_GEN)
	CONTROLLER_GEN=$(CONTROLLER_GEN) $(GO) test ./operator/ -run TestGeneratedFilesUpToDate -count=1

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './bin/*')); \
	  if [[ -n "$$out" ]]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

# -pgo=off: vet needs no optimised build of cmd/driftlab's dependencies
vet:
	$(GO) vet -pgo=off ./...
	cd $(EXAMPLE) && $(GO) vet ./...

# Failpoint builds (README "Failpoints"): pinned failpoint-ctl and gofail in bin/,
# etcd's gofail copy and go.work in build/etcd-failpoints (all ignored).
FAILPOINTS := scripts/failpoints.sh
.PHONY: failpoints-enable failpoints-disable etcd-failpoints test-failpoints failpoints-check

## failpoints-enable: rewrite driftlab's own failpoint markers in place (failpoint-ctl); never commit the result
failpoints-enable:
	$(FAILPOINTS) enable

## failpoints-disable: restore the failpoint markers rewritten by failpoints-enable
failpoints-disable:
	$(FAILPOINTS) disable

## etcd-failpoints: gofail-enabled copy of etcd's server module + build/etcd-failpoints/go.work (use with GOWORK=)
etcd-failpoints:
	$(FAILPOINTS) etcd

## test-failpoints: the failpoint suite in a rewritten snapshot of the tree, with both failpoint systems
test-failpoints: envtest-assets
	KUBEBUILDER_ASSETS=$(ASSETS) $(FAILPOINTS) test

## failpoints-check: fail when a failpoint rewrite is in the tree or in git (also TestNoFailpointRewriteInTree)
failpoints-check:
	@$(FAILPOINTS) check

## test: everything CI runs (fresh machine: builds the control-plane binaries and controller-gen first).
## -p 1: one package's tests at a time, because fault tests measure latency
## ratios and two control planes on two cores measure each other.
test: envtest-assets $(CONTROLLER_GEN) chromium fmt-check vet failpoints-check
	KUBEBUILDER_ASSETS=$(ASSETS) CONTROLLER_GEN=$(CONTROLLER_GEN) $(GO) test -p 1 -count=1 -timeout 45m ./...
	# the example operator's own tests, against driftlab's public API (package lab)
	cd $(EXAMPLE) && KUBEBUILDER_ASSETS=$(ASSETS) CONTROLLER_GEN=$(CONTROLLER_GEN) $(GO) test -count=1 -timeout 20m ./...
	# the lock-free cache variants are where a data race would hide
	$(GO) test -race -count=1 ./operator/statecache/
	# the harness's goroutines under the race detector, short mode (no control plane):
	# the virtual run's record stream, sweep and matrix workers, the harness's scheduler and processes,
	# the simulated world and kubelet, fault proxies and mounts
	$(GO) test -race -short -count=1 $(RACE_PKGS)
	# each fuzz target for a few seconds (what they find goes to testdata/fuzz as seed corpus)
	$(GO) test -run '^$$' -fuzz '^FuzzParseEncodeRoundTrip$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1s ./scenarios/
	$(GO) test -run '^$$' -fuzz '^FuzzParseRun$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1s ./scenarios/
	$(GO) test -run '^$$' -fuzz '^FuzzImport$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1s ./sim/auditimport/
	KUBEBUILDER_ASSETS=$(ASSETS) $(FAILPOINTS) test

# Packages make test runs again under -race -short, and how long each fuzz target runs.
RACE_PKGS := ./operator/virtual/ ./sim/sweep/ ./operator/matrix/ ./sim/shrink/ ./sim/harness/ ./sim/local/ ./sim/cluster/ ./sim/world/ ./sim/kubelet/ ./faults/... ./internal/cli/
FUZZTIME ?= 5s

## chromium: install Debian's chromium when missing (report.html is checked in headless Chromium)
chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  { echo "installing Debian's chromium (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

## bench-cache: the write-up's chapter 2.5 table: cache variants under concurrent readers and
## writers, with and without GC-assist pressure; medians of BENCH_COUNT runs (README "Cache variants")
BENCH_COUNT ?= 5
bench-cache:
	@mkdir -p runs
	$(GO) test -run '^$$' -bench BenchmarkCacheLatency -benchtime 2s -count $(BENCH_COUNT) ./operator/statecache \
	  | tee runs/bench-cache.txt | $(GO) run ./scripts/benchtable

## bench-virtual: BenchmarkBaseline (issue 4's figures: simulated seconds per wall and CPU second,
## runs per CPU-hour, allocations per event), built with the driftlab binary's profile (PGO)
PGO_PROFILE := cmd/driftlab/default.pgo
bench-virtual:
	@mkdir -p runs
	$(GO) test -run '^$$' -bench BenchmarkBaseline -benchtime 300x -count $(BENCH_COUNT) \
	  -pgo=$(CURDIR)/$(PGO_PROFILE) ./operator/virtual | tee runs/bench-virtual.txt

## pgo: refresh $(PGO_PROFILE), the CPU profile go build uses for bin/driftlab
## (profile-guided optimisation), from BenchmarkBaseline
pgo:
	@mkdir -p runs/pgo
	$(GO) test -run '^$$' -bench BenchmarkBaseline -benchtime 500x -pgo=off \
	  -cpuprofile runs/pgo/virtual.pprof -o runs/pgo/virtual.test ./operator/virtual
	cp runs/pgo/virtual.pprof $(PGO_PROFILE)

## unit: the fast tests only (no control plane)
unit:
	$(GO) test -count=1 -short ./...

clean:
	rm -rf $(BIN)/driftlab runs/
