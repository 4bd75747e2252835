# Blockstore. `make help` lists the targets.

GO        ?= go
GOBIN     ?= $(shell $(GO) env GOPATH)/bin
MINIO     := $(GOBIN)/minio
MINIO_VERSION := v0.0.0-20260212201848-7aac2a2c5b7c
BAZEL_REMOTE  := $(GOBIN)/bazel-remote
BAZEL_REMOTE_VERSION := v2.6.2
STATICCHECK_VERSION := v0.8.2
FUZZTIME  ?= 30s
DATA      ?= ./blockstore-data
ADDR      ?= 127.0.0.1:8080

export BLOCKSTORE_MINIO_BIN ?= $(MINIO)
export BLOCKSTORE_BAZEL_REMOTE_BIN ?= $(BAZEL_REMOTE)

.DEFAULT_GOAL := help
.PHONY: help run build test test-race vet fmt-check tidy-check lint fuzz bench bench-quick minio bazel-remote chromium clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

run: ## run the service on the embedded default (127.0.0.1:8080, ./blockstore-data)
	$(GO) run ./cmd/blockstore serve --addr $(ADDR) --data $(DATA)

build: ## build bin/blockstore
	$(GO) build -o bin/blockstore ./cmd/blockstore

test: minio bazel-remote chromium vet fmt-check tidy-check ## vet, gofmt, go mod tidy, every test with the race detector (fuzz seeds included)
	$(GO) test -race -timeout 20m ./...

test-race: test ## the same as test: every test always runs with the race detector

vet: ## go vet
	$(GO) vet ./...

fmt-check: ## fail when gofmt would change a file
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

tidy-check: ## fail when go mod tidy would change go.mod or go.sum
	$(GO) mod tidy -diff

lint: ## staticcheck (installed from the Go module proxy on first use)
	@test -x $(GOBIN)/staticcheck || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(GOBIN)/staticcheck ./...

fuzz: ## run each fuzz target for FUZZTIME (default 30s)
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

bench: minio bazel-remote ## end-to-end benchmarks at the issues' sizes (several minutes): one table beside the machine's limits and MinIO, also in bench/results/latest.md
	$(GO) run ./bench/cmd/blockstore-bench -scale default -out bench/results/latest.md

bench-quick: minio bazel-remote ## the same table at small sizes, in under two minutes (bench/results/quick.md)
	$(GO) run ./bench/cmd/blockstore-bench -scale quick -out bench/results/quick.md

minio: $(MINIO) ## build the MinIO server the S3 tests run (once, ~4 minutes)

$(MINIO):
	GOBIN=$(GOBIN) $(GO) install github.com/minio/minio@$(MINIO_VERSION)

# bazel-remote is the transfer benchmarks' CAS peer. The module proxy
# refuses `go install` of it (its version list), so its module is
# downloaded and built from a writable copy (~2 minutes, once).
bazel-remote: $(BAZEL_REMOTE) ## build bazel-remote, the transfer benchmarks' CAS peer (once)

$(BAZEL_REMOTE):
	@set -e; tmp=$$(mktemp -d); trap 'chmod -R u+w "$$tmp"; rm -rf "$$tmp"' EXIT; \
	cd "$$tmp"; \
	GOWORK=off $(GO) mod download github.com/buchgr/bazel-remote/v2@$(BAZEL_REMOTE_VERSION); \
	cp -R "$$($(GO) env GOMODCACHE)/github.com/buchgr/bazel-remote/v2@$(BAZEL_REMOTE_VERSION)" src; \
	chmod -R u+w src; cd src; \
	echo "building bazel-remote $(BAZEL_REMOTE_VERSION)"; \
	GOWORK=off $(GO) build -trimpath -o $(BAZEL_REMOTE) .

# The console's browser tests drive Debian's headless Chromium. Installed
# with apt-get when missing (sudo when not root); when that fails, CI=true
# fails the run and elsewhere the browser tests skip, saying so.
chromium: ## install Chromium for the console's browser tests (apt-get, when missing)
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then exit 0; fi; \
	sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	echo "installing chromium with apt-get"; \
	if $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium >/dev/null; then exit 0; fi; \
	if [ "$$CI" = true ]; then echo "chromium could not be installed (CI=true: failing)"; exit 1; fi; \
	echo "*** chromium could not be installed: the console's browser tests will SKIP ***"

clean: ## remove build output (not the data directory)
	rm -rf bin
