# sharded-kvs — the README's commands: `make up` (local cluster) and `make test`.
SHELL := /bin/bash
NODE_TEST := node --import tsx --import ./test/support/exit-guard.ts --test --test-reporter=spec
TEST_FILES = $(shell find test -name '*.test.ts' | sort)

.PHONY: all deps build test-deps bench-deps up test typecheck lint unit sim bench-raft

all: deps build

# Installs npm packages when node_modules is missing or older than the lockfile.
deps: node_modules/.installed
node_modules/.installed: package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# The compiled JavaScript the kvs bin runs (src/ -> dist/, docs/packages.md). Nothing to do when no
# source changed; tsc's incremental build info makes a rebuild after a small change quicker.
BUILD_INPUTS = $(shell find src -name '*.ts') tsconfig.json tsconfig.build.json
build: dist/.built
dist/.built: node_modules/.installed $(BUILD_INPUTS)
	npm run --silent build
	touch $@

# Debian packages (list in .ci/deps): installed when run as root, else the one apt-get line to run.
test-deps:
	.ci/deps test
bench-deps:
	.ci/deps bench

# Starts a local cluster (3 replicas on 127.0.0.1, data under ./data) until Ctrl-C.
# Running it again recovers the data. Options: make up UP_ARGS="--replicas 5 --base-port 8001"
UP_ARGS ?=
up: deps build
	node bin/kvs.js up $(UP_ARGS)

typecheck: deps
	npx tsc --noEmit

lint: deps
	npx eslint .

# A hung test must fail the run, not stall it: each test is cancelled after 10 minutes, each test
# file's process is ended 5 s after its tests are done if a leaked handle keeps it alive
# (test/support/exit-guard.ts; not --test-force-exit, which loses verdicts in Node 20), and the
# whole run is bounded at 60 minutes (CI allows 90 including installs).
UNIT_LIMIT_S ?= 3600
# Two test files at a time: most of a file's time is spent waiting (elections, child processes,
# the container image build), and Node's default on 2 cores is one.
TEST_CONCURRENCY ?= 2
unit: deps test-deps trace-build build
	timeout -k 30 $(UNIT_LIMIT_S) $(NODE_TEST) --test-concurrency=$(TEST_CONCURRENCY) --test-timeout=600000 $(TEST_FILES) \
	  || { rc=$$?; [ $$rc -ne 124 ] || echo "make unit: the tests did not finish within $(UNIT_LIMIT_S) s" >&2; exit $$rc; }

# eBPF wire tracing (docs/tracing.md): the BPF object and the N-API addon that loads it.
TRACE_OBJ := ebpf/build/trace.bpf.o
TRACE_ADDON := native/build/Release/kvs_trace.node
.PHONY: trace-build
trace-build: $(TRACE_OBJ) $(TRACE_ADDON)
$(TRACE_OBJ): ebpf/trace.bpf.c ebpf/trace_abi.h ebpf/build.sh
	ebpf/build.sh
$(TRACE_ADDON): node_modules/.installed native/binding.gyp native/build.sh $(wildcard native/src/*) ebpf/trace_abi.h
	native/build.sh

test: test-deps typecheck lint unit

# Sweep simulator seeds: make sim SEEDS=20000 FROM=1 [GROUPS=3: groups hosted by the same processes]
SEEDS ?= 2000
FROM ?= 1
GROUPS ?= 1
sim: deps
	npm run sim -- --seeds $(SEEDS) --from $(FROM) --groups $(GROUPS)

# A chaos soak of the default kvs up cluster (bench/chaos.ts): kill -9 of hosts and of kvs up,
# partitions, pauses and reshards under a recorded workload, checked linearizable. Root, iptables,
# ss; in a network namespace of its own: make chaos CHAOS_ARGS="--seed 7 --minutes 10"
CHAOS_ARGS ?= --minutes 10
.PHONY: chaos
chaos: deps build
	unshare -n bash -c 'ip link set lo up && nice -n 10 timeout 3600 node --import tsx bench/chaos.ts $(CHAOS_ARGS)'

bench-raft: deps
	node --import tsx bench/raft-core.ts

# Resharding 3 -> 4 groups under write load (docs/resharding.md): make bench-reshard RESHARD_ARGS="--keys 1000000"
RESHARD_ARGS ?=
.PHONY: bench-reshard
bench-reshard: deps build
	node --import tsx bench/reshard.ts $(RESHARD_ARGS)

# The default cluster at rest: CPU, context switches and memory of its replicas (docs/benchmarks.md).
IDLE_ARGS ?=
.PHONY: bench-idle
bench-idle: deps build
	timeout -k 10 600 node --import tsx bench/idle.ts $(IDLE_ARGS)

# The sharded cluster's RESP doors vs one group (redis-benchmark), both process layouts.
CLUSTER_RESP_ARGS ?=
.PHONY: bench-cluster-resp
bench-cluster-resp: deps bench-deps build
	timeout -k 10 900 node --import tsx bench/cluster-resp.ts $(CLUSTER_RESP_ARGS)

# Benchmarks against etcd and Redis (not tests; see docs/benchmarks.md). bench-compare starts
# every system on 127.0.0.1, runs the matrix, stops everything and writes bench/results/.
# Options: make bench-compare BENCH_ARGS="--reps 5 --duration 5" (or --quick for a smoke run).
.PHONY: bench-compare bench-profile bench-load
BENCH_ARGS ?=
bench-compare: deps bench-deps build
	timeout -k 30 1200 node --import tsx bench/compare.ts $(BENCH_ARGS)

# The floor of a durable 3-replica write (minimal chains in C and Node) beside this store, both
# workloads, alternating rounds (docs/benchmarks.md). Options: FLOOR_ARGS="--rounds 5 --dir DIR"
FLOOR_ARGS ?=
.PHONY: bench-floor
bench-floor: deps bench-deps build
	timeout -k 30 1200 node --import tsx bench/floor.ts $(FLOOR_ARGS)

# Where a leader's time goes: node --cpu-prof on a 3-replica group under load, summarised.
PROFILE_ARGS ?=
bench-profile: deps build
	timeout -k 30 600 node --import tsx bench/profile.ts $(PROFILE_ARGS)

# The load generator against a running cluster: make bench-load LOAD_ARGS="--cluster data --workload A"
LOAD_ARGS ?= --cluster data
bench-load: deps
	node --import tsx bench/load.ts $(LOAD_ARGS)

# Kubernetes (docs/kubernetes.md). k8s-check: render every Kustomize overlay and check it (schemas,
# policies). image: build the Containerfile with podman or docker, tagged with the version and commit
# and with the bare version, which the base manifests name (localhost/sharded-kvs:0.1.0).
.PHONY: k8s-check image kind-e2e
k8s-check: deps
	$(NODE_TEST) test/k8s/manifests.test.ts test/k8s/pod-identity.test.ts

PACKAGE_VERSION := $(shell node -p "require('./package.json').version" 2>/dev/null)
KVS_VERSION := $(PACKAGE_VERSION)-$(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
IMAGE ?= localhost/sharded-kvs:$(KVS_VERSION)
IMAGE_MANIFEST_TAG ?= localhost/sharded-kvs:$(PACKAGE_VERSION)
# Options: make image IMAGE=registry.example.com/kvs:1.0 IMAGE_BUILD_ARGS="--build-arg NODE_IMAGE=..."
IMAGE_BUILD_ARGS ?=
image:
	@engine=$$(command -v podman || command -v docker) || { echo "make image: needs podman or docker" >&2; exit 1; }; \
	extra=(); if [[ $$engine == *podman ]]; then engine="$$engine --runtime runc"; extra=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024); fi; \
	echo "$$engine build -t $(IMAGE) -t $(IMAGE_MANIFEST_TAG)"; \
	$$engine build "$${extra[@]}" --build-arg VERSION=$(KVS_VERSION) $(IMAGE_BUILD_ARGS) -t $(IMAGE) -t $(IMAGE_MANIFEST_TAG) -f Containerfile .

# The manifests on a real cluster (needs kind, docker and kubectl; not runnable on the CI machines):
# builds the image, loads it into a new kind cluster, applies the dev overlay and checks it serves.
kind-e2e:
	test/k8s/kind-e2e.sh
