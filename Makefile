# cachekit checks. `make test` is the check before every commit and what CI runs (.ci/run).
#
#   make test           start private servers, then gofmt, vet, staticcheck and go test -race
#                       with CACHEKIT_REQUIRE_SERVERS=1; the servers are stopped at the end,
#                       also on failure or interrupt
#   make lint           gofmt, go vet, staticcheck (no servers)
#   make test-short     go test -short ./..., no servers (integration tests skip), no race
#   make servers-start  start the servers; then `. .test-servers/env` to use them by hand
#   make servers-stop   stop them
#   make quickstart     go run ./examples/quickstart
#   make blog           the demo blog (examples/blog) on http://127.0.0.1:8080/
#   make blog-screenshot  rewrite docs/images/blog.png from the blog's browser test
#   make cli            build the cachekit command into bin/cachekit
#   make bench-disk     [QUICK=1] the disk store against its peers (bench/README.md)
#   make bench-network  [QUICK=1] the redis and tiered stores against Redis clients and caches
#   make bench-memo     [QUICK=1] memo's cached functions against sturdyc and go-redis/cache
#   make bench-qcache   [QUICK=1] the query cache: hit ratio under writes, granular vs table-level
#   make bench-memory   [QUICK=1] the in-process cache against otter, ristretto, theine and golang-lru

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test

GO ?= go
# Packages that also build without cgo: the disk store's SQL runs on both SQLite drivers,
# mattn (cgo, the default) and modernc (pure Go, CGO_ENABLED=0 or -tags cachekit_purego);
# the SQL dependency extractor then has no PostgreSQL parser. make test runs them both ways.
PUREGO_PKGS := ./internal/sqlitedb/ ./disk/ ./qcache/internal/sqldeps/
SERVERS := scripts/test-servers.sh
# The state dir of scripts/test-servers.sh: pid files, data dirs and the env file.
export CACHEKIT_TEST_STATE := $(abspath $(or $(CACHEKIT_TEST_STATE),.test-servers))

# Every .go file outside testdata and hidden directories (tools/ and bench/ included),
# NUL-separated.
GO_FILES := find . \( -name testdata -o -name '.?*' \) -prune -o -type f -name '*.go' -print0

.PHONY: test lint fmt-check vet staticcheck test-short servers-start servers-stop quickstart

# One shell, so that the trap stops the servers whatever happens after start. The checks
# keep going after a failure (make -k) so one run reports all of them; the recipe exits
# non-zero if any failed.
test:
	@trap 'rc=$$?; $(SERVERS) stop || true; exit $$rc' EXIT; \
	$(SERVERS) start; \
	source "$$CACHEKIT_TEST_STATE/env"; \
	export CACHEKIT_REQUIRE_SERVERS=1; \
	rc=0; \
	$(MAKE) --no-print-directory -k lint || rc=$$?; \
	echo "==> go test -race -count=1 ./..."; \
	$(GO) test -race -count=1 ./... || { s=$$?; [ "$$rc" -ne 0 ] || rc=$$s; }; \
	echo "==> CGO_ENABLED=0 go test (pure-Go SQLite driver; no PostgreSQL parser) $(PUREGO_PKGS)"; \
	CGO_ENABLED=0 $(GO) test -count=1 $(PUREGO_PKGS) || { s=$$?; [ "$$rc" -ne 0 ] || rc=$$s; }; \
	echo "==> go test ./... in bench/"; \
	(cd bench && $(GO) test -count=1 ./...) || { s=$$?; [ "$$rc" -ne 0 ] || rc=$$s; }; \
	echo "==> go test -race -count=1 ./... in examples/orm/"; \
	(cd examples/orm && $(GO) test -race -count=1 ./...) || { s=$$?; [ "$$rc" -ne 0 ] || rc=$$s; }; \
	echo "==> go test -race -count=1 ./... in qcache/gormcache/"; \
	(cd qcache/gormcache && $(GO) test -race -count=1 ./...) || { s=$$?; [ "$$rc" -ne 0 ] || rc=$$s; }; \
	echo "==> scripts/ensure-chromium.sh (Debian's chromium, for examples/blog's browser test)"; \
	scripts/ensure-chromium.sh >/dev/null || { s=$$?; [ "$$rc" -ne 0 ] || rc=$$s; }; \
	echo "==> go test -race -count=1 ./... in examples/blog/ (headless Chromium included)"; \
	(cd examples/blog && $(GO) test -race -count=1 ./...) || { s=$$?; [ "$$rc" -ne 0 ] || rc=$$s; }; \
	echo "==> go test -race -count=1 ./... in metrics/prometheus/ and metrics/otel/"; \
	(cd metrics/prometheus && $(GO) test -race -count=1 ./...) || { s=$$?; [ "$$rc" -ne 0 ] || rc=$$s; }; \
	(cd metrics/otel && $(GO) test -race -count=1 ./...) || { s=$$?; [ "$$rc" -ne 0 ] || rc=$$s; }; \
	echo "==> go test -race -tags sqlite_preupdate_hook ./qcache/sqlitefeed/ (the SQLite change feed)"; \
	$(GO) test -race -count=1 -tags sqlite_preupdate_hook ./qcache/sqlitefeed/ || { s=$$?; [ "$$rc" -ne 0 ] || rc=$$s; }; \
	if [ "$$rc" -ne 0 ]; then echo "make test: FAILED"; else echo "make test: ok"; fi; \
	exit $$rc

lint: fmt-check vet staticcheck

fmt-check:
	@echo "==> gofmt -l"
	@out=$$($(GO_FILES) | xargs -0 -r gofmt -l); \
	if [ -n "$$out" ]; then printf 'gofmt: not formatted (run gofmt -w):\n%s\n' "$$out"; exit 1; fi

vet:
	@echo "==> go vet ./... (and the bench, examples/orm, examples/blog, qcache/gormcache and metrics modules, and the sqlitefeed tag)"
	@$(GO) vet ./...
	@cd bench && $(GO) vet ./...
	@cd examples/orm && $(GO) vet ./...
	@cd qcache/gormcache && $(GO) vet ./...
	@cd metrics/prometheus && $(GO) vet ./...
	@cd metrics/otel && $(GO) vet ./...
	@cd examples/blog && $(GO) vet ./...
	@$(GO) vet -tags sqlite_preupdate_hook ./qcache/sqlitefeed/

# staticcheck is a tool of the separate module in tools/ (it needs a newer go directive than
# the library's); `go tool -n` builds it if needed and prints the binary's path. It runs on
# the main module (also with the SQLite feed's build tag), examples/orm, qcache/gormcache and the
# metrics modules.
staticcheck:
	@echo "==> staticcheck ./... (and the sqlitefeed tag, examples/orm, examples/blog, qcache/gormcache, metrics/prometheus, metrics/otel)"
	@staticcheck=$$(cd tools && $(GO) tool -n staticcheck); "$$staticcheck" ./... && \
		"$$staticcheck" -tags sqlite_preupdate_hook ./qcache/sqlitefeed/ && \
		(cd examples/orm && "$$staticcheck" ./...) && (cd qcache/gormcache && "$$staticcheck" ./...) && \
		(cd metrics/prometheus && "$$staticcheck" ./...) && (cd metrics/otel && "$$staticcheck" ./...) && \
		(cd examples/blog && "$$staticcheck" ./...)

test-short:
	env -u CACHEKIT_REQUIRE_SERVERS $(GO) test -short ./...

servers-start:
	@$(SERVERS) start

servers-stop:
	@$(SERVERS) stop

quickstart:
	$(GO) run ./examples/quickstart

# make blog: the demo blog (examples/blog, its own module) on http://127.0.0.1:8080/, SQLite and
# in-process caches. make blog-screenshot rewrites docs/images/blog.png from its browser test.
.PHONY: blog blog-screenshot cli

blog:
	cd examples/blog && $(GO) run .

blog-screenshot:
	scripts/ensure-chromium.sh
	cd examples/blog && $(GO) test -count=1 -run TestBrowser -update .

# make cli: build the cachekit command into bin/cachekit.
cli:
	$(GO) build -o bin/cachekit ./cmd/cachekit

# make bench-disk [QUICK=1]: cachekit's disk store side by side with Python DiskCache
# (Debian's python3-diskcache, installed here if missing), Redis and Memcached on 127.0.0.1;
# see bench/README.md. Writes bench/results/disk.json. The servers get their own state dir,
# so that a concurrent `make test` keeps its own, and are stopped at the end, also on failure
# or interrupt. BENCH_PYTHON is Debian's interpreter: a python3 first on PATH (pyenv, venv)
# does not see Debian's packages. The private memcached's 64 MiB is raised to 1 GiB at run time
# (cache_memlimit): 20k values of 10 KiB would not fit.
BENCH_PYTHON ?= /usr/bin/python3
BENCH_TEST_STATE ?= $(CURDIR)/bench/.test-servers

.PHONY: bench-disk

bench-disk:
	@if ! $(BENCH_PYTHON) -c 'import diskcache' 2>/dev/null; then \
		echo "==> apt-get install python3-diskcache"; \
		sudo=(); [ "$$(id -u)" -eq 0 ] || sudo=(sudo); \
		"$${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q; \
		"$${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-diskcache; \
	fi; \
	export CACHEKIT_TEST_STATE="$(BENCH_TEST_STATE)"; \
	trap 'rc=$$?; $(SERVERS) stop || true; exit $$rc' EXIT; \
	$(SERVERS) start; \
	source "$$CACHEKIT_TEST_STATE/env"; \
	(cd bench && $(GO) run ./disk $(if $(QUICK),-quick) -python $(BENCH_PYTHON) -memcached-memlimit 1024 -out results/disk.json)

# make bench-network [QUICK=1]: cachekit's redis store against raw rueidis, go-redis and
# go-redis/cache, and the tiered store (L1 over redis) against go-redis/cache's local cache, on
# a private Redis on 127.0.0.1; plus the cross-process invalidation delay. See bench/README.md.
# Writes bench/results/network.json. The servers get a state dir of their own (not bench-disk's,
# not make test's), and are stopped at the end, also on failure or interrupt.
BENCH_NETWORK_TEST_STATE ?= $(or $(TMPDIR),/tmp)/cachekit-bench-network

.PHONY: bench-network

bench-network:
	@export CACHEKIT_TEST_STATE="$(BENCH_NETWORK_TEST_STATE)"; \
	trap 'rc=$$?; $(SERVERS) stop || true; exit $$rc' EXIT; \
	$(SERVERS) start; \
	source "$$CACHEKIT_TEST_STATE/env"; \
	(cd bench && $(GO) run ./network $(if $(QUICK),-quick) -out results/network.json)

# make bench-memo [QUICK=1]: memo's cached functions against sturdyc and go-redis/cache: the
# cost of a hit, cold-key stampedes in one process and across 4 processes (one disk directory,
# one Redis), and recomputations and waiting callers around expiry. See bench/README.md. Writes
# bench/results/memo.json. The servers get a state dir of their own (not bench-disk's, not
# bench-network's, not make test's), and are stopped at the end, also on failure or interrupt.
BENCH_MEMO_TEST_STATE ?= $(or $(TMPDIR),/tmp)/cachekit-bench-memo

.PHONY: bench-memo

bench-memo:
	@export CACHEKIT_TEST_STATE="$(BENCH_MEMO_TEST_STATE)"; \
	trap 'rc=$$?; $(SERVERS) stop || true; exit $$rc' EXIT; \
	$(SERVERS) start; \
	source "$$CACHEKIT_TEST_STATE/env"; \
	(cd bench && $(GO) run ./memo $(if $(QUICK),-quick) -out results/memo.json)

# make bench-qcache [QUICK=1]: the query cache (qcache) under a write load: hit ratio, database
# queries saved and hit/miss/uncached latency of 20 query shapes over Zipf(1.1) keys at 0, 10, 100
# and 1,000 writes/s, for no cache, table-level invalidation and granular invalidation (memory and
# Redis stores, Redis behind an in-process tier, and fed by the PostgreSQL change feed); plus the
# anchor latencies of one primary-key SELECT. See docs/benchmarks.md.
# Writes bench/results/qcache.json. The servers get a state dir of their own (not the other
# suites', not make test's), and are stopped at the end, also on failure or interrupt. The
# staleness proof is a test: cd bench && go test -run TestStaleness ./qcache (servers sourced).
BENCH_QCACHE_TEST_STATE ?= $(or $(TMPDIR),/tmp)/cachekit-bench-qcache

.PHONY: bench-qcache

bench-qcache:
	@export CACHEKIT_TEST_STATE="$(BENCH_QCACHE_TEST_STATE)"; \
	trap 'rc=$$?; $(SERVERS) stop || true; exit $$rc' EXIT; \
	$(SERVERS) start; \
	source "$$CACHEKIT_TEST_STATE/env"; \
	(cd bench && $(GO) run ./qcache $(if $(QUICK),-quick) -out results/qcache.json)

# make bench-memory [QUICK=1]: the in-process cache (memory.Cache) against otter, ristretto,
# theine and golang-lru: hit ratio on Zipf and the ARC P3 and LIRS LOOP traces (with Bélády's
# optimum; one PNG chart per trace in docs/charts/), throughput at GOMAXPROCS 1 and 2, and heap
# per entry. See bench/README.md. Writes bench/results/memory.json. No servers. QUICK=1 (fewer
# capacities, the first 600k requests of P3, 3 rounds) takes under 2 minutes at load 5–7 on the
# 2-vCPU machine; the full run took 7 min 47 s at load 1 (2026-11-22).
BENCH_TRACES ?= $(abspath ../shared/traces)

.PHONY: bench-memory

bench-memory:
	cd bench && $(GO) run ./memory $(if $(QUICK),-quick) -traces $(BENCH_TRACES) -charts ../docs/charts -out results/memory.json
