# dsrflow: `make dev` runs the whole stack, `make test` runs every test.

GO            ?= go
BIN           := $(CURDIR)/bin
TEMPORAL_CLI  := v1.5.1
WORKFLOWCHECK := v0.6.0
GOFILES       := $(shell find . -name '*.go' -not -path './bin/*' -not -path './.data/*')
# dsr --version: a release tag when there is one (else dsrflow's app.Version), and the commit.
VERSION       ?= $(shell git describe --tags --dirty 2>/dev/null)
COMMIT        ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)

.PHONY: all tools build test lint bench chaos fuzz dev clean

all: build

## tools: the pinned Temporal CLI (dev server) and workflowcheck, into bin/
tools: $(BIN)/temporal $(BIN)/workflowcheck

$(BIN)/temporal:
	GOBIN=$(BIN) $(GO) install github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_CLI)

$(BIN)/workflowcheck:
	GOBIN=$(BIN) $(GO) install go.temporal.io/sdk/contrib/tools/workflowcheck@$(WORKFLOWCHECK)

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

## test: lint, then every test with the race detector (needs bin/temporal: built by tools)
test: tools build lint
	DSR_BIN=$(BIN) $(GO) test -race -count=1 -timeout 20m ./...

## bench: Go benchmarks of the hot paths, then the end-to-end benchmark (BENCH_N=10000 erasures)
bench: tools build
	$(GO) test -run '^$$' -bench . -benchmem ./...
	$(GO) run ./bench

## chaos: the fault-injection suite with more requests per scenario, and its report
CHAOS_N ?= 200
chaos: tools build
	@mkdir -p .data; DSR_BIN=$(BIN) DSR_CHAOS_N=$(CHAOS_N) $(GO) test -count=1 -timeout 60m -v ./chaos > .data/chaos.log 2>&1; \
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

clean:
	rm -f $(BIN)/worker $(BIN)/api $(BIN)/dsr
