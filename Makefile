# sharded-kvs — the README's commands: `make up` (local cluster) and `make test`.
SHELL := /bin/bash
NODE_TEST := node --import tsx --test --test-reporter=spec
TEST_FILES = $(shell find test -name '*.test.ts' | sort)

.PHONY: all deps up test typecheck lint unit sim bench-raft

all: deps

# Installs npm packages when node_modules is missing or older than the lockfile.
deps: node_modules/.installed
node_modules/.installed: package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# Starts a local cluster (3 replicas on 127.0.0.1, data under ./data) until Ctrl-C.
# Running it again recovers the data. Options: make up UP_ARGS="--replicas 5 --base-port 8001"
UP_ARGS ?=
up: deps
	node bin/kvs.js up $(UP_ARGS)

typecheck: deps
	npx tsc --noEmit

lint: deps
	npx eslint .

unit: deps
	$(NODE_TEST) $(TEST_FILES)

test: typecheck lint unit

# Sweep simulator seeds: make sim SEEDS=20000 FROM=1
SEEDS ?= 2000
FROM ?= 1
sim: deps
	npm run sim -- --seeds $(SEEDS) --from $(FROM)

bench-raft: deps
	node --import tsx bench/raft-core.ts
