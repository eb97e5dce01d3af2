# dsrflow: `make dev` runs the whole stack, `make test` runs every test.

GO            ?= go
BIN           := $(CURDIR)/bin
TEMPORAL_CLI  := v1.5.1
WORKFLOWCHECK := v0.6.0
# The Temporal server, its schema tool and the Web UI server of `make cluster`
# (the UI server at the version the CLI above embeds).
TEMPORAL_SERVER := v1.29.1
TEMPORAL_UI     := v2.42.1
GOFILES       := $(shell find . -name '*.go' -not -path './bin/*' -not -path './.data/*')
# dsr --version: a release tag when there is one (else dsrflow's app.Version), and the commit.
VERSION       ?= $(shell git describe --tags --dirty 2>/dev/null)
COMMIT        ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)

.PHONY: all tools build test lint bench chaos fuzz dev cluster clean

all: build

## tools: the pinned Temporal CLI (dev server) and workflowcheck, and the
## Temporal server, schema tool and Web UI server of `make cluster`, into bin/
tools: $(BIN)/temporal $(BIN)/workflowcheck $(BIN)/temporal-server $(BIN)/temporal-sql-tool $(BIN)/temporal-ui-server

$(BIN)/temporal:
	GOBIN=$(BIN) $(GO) install github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_CLI)

$(BIN)/workflowcheck:
	GOBIN=$(BIN) $(GO) install go.temporal.io/sdk/contrib/tools/workflowcheck@$(WORKFLOWCHECK)

# These three commands are all called "server" or "sql": each is installed
# into a directory of its own, then renamed.
$(BIN)/temporal-server:
	GOBIN=$(BIN)/.temporal-server $(GO) install go.temporal.io/server/cmd/server@$(TEMPORAL_SERVER)
	mv $(BIN)/.temporal-server/server $@ && rmdir $(BIN)/.temporal-server

$(BIN)/temporal-sql-tool:
	GOBIN=$(BIN)/.temporal-sql-tool $(GO) install go.temporal.io/server/cmd/tools/sql@$(TEMPORAL_SERVER)
	mv $(BIN)/.temporal-sql-tool/sql $@ && rmdir $(BIN)/.temporal-sql-tool

$(BIN)/temporal-ui-server:
	GOBIN=$(BIN)/.temporal-ui-server $(GO) install github.com/temporalio/ui-server/v2/cmd/server@$(TEMPORAL_UI)
	mv $(BIN)/.temporal-ui-server/server $@ && rmdir $(BIN)/.temporal-ui-server

## build: bin/worker, bin/api, bin/dsr
build: $(BIN)/worker $(BIN)/api $(BIN)/dsr

$(BIN)/worker: $(GOFILES) go.mod go.sum
	$(GO) build -o $@ ./worker
$(BIN)/api: $(GOFILES) go.mod go.sum
	$(GO) build -o $@ ./api
$(BIN)/dsr: $(GOFILES) go.mod go.sum
	$(GO) build -ldflags "-X main.version=$(VERSION) -X main.commit=$(COMMIT)" -o $@ ./starter

## lint: gofmt, go vet, workflowcheck
lint: $(BIN)/workflowcheck
	@out=$$(gofmt -l $(GOFILES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(BIN)/workflowcheck ./workflows/...

## test: lint, then every test with the race detector (needs bin/temporal: built by tools),
## then the erasure and access end-to-end tests again on a Temporal cluster on PostgreSQL
test: tools build lint
	DSR_BIN=$(BIN) $(GO) test -race -count=1 -timeout 20m ./...
	DSR_BIN=$(BIN) DSR_E2E_STACK=cluster $(GO) test -race -count=1 -timeout 15m \
		-run '^(TestErasuresEndToEnd|TestAccessRequestProducesAResultsBundle)$$' ./e2e
	cd deploy/check && $(GO) test -count=1 ./...

## bench: Go benchmarks of the hot paths, then the end-to-end benchmark (BENCH_N=10000 erasures)
bench: tools build
	$(GO) test -run '^$$' -bench . -benchmem ./...
	$(GO) run ./bench

## chaos: the fault-injection suite with more requests per scenario, and its report;
## CHAOS_STACK=cluster runs the scenarios on a Temporal cluster on PostgreSQL instead
CHAOS_N ?= 200
CHAOS_STACK ?= dev
CHAOS_RUN := $(if $(filter cluster,$(CHAOS_STACK)),-run '^TestCluster',)
chaos: tools build
	@mkdir -p .data; DSR_BIN=$(BIN) DSR_CHAOS_N=$(CHAOS_N) DSR_CHAOS_STACK=$(CHAOS_STACK) $(GO) test -count=1 -timeout 60m -v $(CHAOS_RUN) ./chaos > .data/chaos.log 2>&1; \
	status=$$?; grep -E '^(=== RUN|--- |ok|FAIL|PASS)|CHAOS' .data/chaos.log; echo "full log: .data/chaos.log"; exit $$status

## fuzz: longer fuzzing runs than the seed corpora in `make test`
# A count, not a duration: time-limited fuzzing ends with "context deadline exceeded" on Go 1.26.
FUZZTIME ?= 300000x
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecodeRequest -fuzztime $(FUZZTIME) ./internal/opendsr
	$(GO) test -run '^$$' -fuzz FuzzParseResponse -fuzztime $(FUZZTIME) ./internal/mixpanel

## dev: the whole stack on this machine, with the Temporal Web UI
dev: tools build
	./scripts/dev.sh

## cluster: the whole stack on a Temporal cluster (separate services) on the local PostgreSQL
cluster: tools build
	./scripts/cluster.sh

clean:
	rm -f $(BIN)/worker $(BIN)/api $(BIN)/dsr
