# Runnel — make is the front door. Bare `make` lists the targets.
GO       ?= go
DATA     ?= ./data
ADDR     ?= 127.0.0.1:7070
BIN      := bin/runnel
FUZZTIME ?= 20s

.DEFAULT_GOAL := help
.PHONY: help build run test test-ui test-short bench lint fuzz ui clean

help: ## list the targets
	@echo "Runnel make targets:"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | awk -F'\t' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build bin/runnel
	$(GO) build -o $(BIN) ./cmd/runnel

run: build ## build and start the server (with the demo job) on ./data at 127.0.0.1:7070
	$(BIN) serve --data $(DATA) --addr $(ADDR) --demo

test: build ## run every test (unit, crash, integration, browser)
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 30m ./...
	$(MAKE) test-ui

test-ui: build web/ui/node_modules ## browser and UI tests (Node 20, Debian chromium at /usr/bin/chromium)
	cd web/ui && npm run check
	cd web/ui && RUNNEL_BIN=$(CURDIR)/$(BIN) npm test

web/ui/node_modules: web/ui/package-lock.json
	cd web/ui && npm ci --no-audit --no-fund
	@touch $@

ui: web/ui/node_modules ## rebuild the web UI bundle into web/ui/dist (committed, embedded)
	cd web/ui && npm run build

test-short: ## quick unit tests only
	$(GO) test -short ./...

bench: build ## hot-path benchmarks and whole-system figures
	$(GO) test -run '^$$' -bench . -benchtime 1x ./... | tee bench.out
	$(BIN) bench ingest

.PHONY: cross
cross: ## check that `go build ./...` works for darwin and windows (tests run on unix; about 1-2 min from a cold cache)
	GOOS=darwin $(GO) build ./...
	GOOS=windows $(GO) build ./...

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

fuzz: ## run each fuzz target for FUZZTIME
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

clean: ## remove build outputs
	rm -rf bin bench.out
