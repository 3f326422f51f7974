# quorate — `make demo` runs a full multi-party signing; `make test` runs every test.
# Both install what is missing on a Debian machine: softhsm2, chromium, docker-registry,
# tmux, openssl, promtool (prometheus), openssh-client, litewitness, local-kms, Go modules.

GO        ?= go
BIN       := bin/quorate
GOFLAGS   ?=
export CGO_ENABLED ?= 1
# quorate version prints these (falling back to the Go build information).
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS   := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: all build deps test test-short demo demo-console bench nocgo fmt vet clean postgres dist

all: build

deps:
	@bash scripts/softhsm.sh install >/dev/null
	@GO=$(GO) bash scripts/witness.sh install >/dev/null
	@GO=$(GO) bash scripts/localkms.sh install >/dev/null
	@bash scripts/chromium.sh install >/dev/null
	@bash scripts/registry.sh install >/dev/null
	@bash scripts/tmux.sh install >/dev/null
	@bash scripts/openssl.sh install >/dev/null
	@bash scripts/promtool.sh install >/dev/null
	@$(GO) mod download

# Start the local PostgreSQL cluster when it is installed but stopped (CI has one).
postgres:
	@bash scripts/postgres.sh ensure

build: deps
	$(GO) build $(GOFLAGS) -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/quorate

# Static release archives (no cgo, so no PKCS#11) for linux/amd64, linux/arm64
# and darwin/arm64, SHA256SUMS, and quorate's own attestation of it (dist/).
dist:
	VERSION=$(VERSION) COMMIT=$(COMMIT) GO=$(GO) bash scripts/dist.sh

# A build without cgo must still work (PKCS#11 then reports it is missing).
nocgo:
	CGO_ENABLED=0 $(GO) build -o bin/quorate-nocgo ./cmd/quorate
	CGO_ENABLED=0 $(GO) vet ./keys/... ./roles/... ./policy/... ./attest/... ./provenance/...
	@bash scripts/check-purego.sh

vet:
	$(GO) vet ./...

# The race runtime sleeps 1 s at every exit by default (atexit_sleep_ms), and
# cmd/quorate's scripts run the race-built test binary as quorate hundreds of
# times: that sleep was most of make test's time. testscript passes GORACE on.
GORACE ?= atexit_sleep_ms=10

test: deps postgres build nocgo vet
	GORACE='$(GORACE)' $(GO) test -race -timeout 20m ./...
	@# Restarting PostgreSQL disturbs every other test using it: run alone, after.
	QUORATE_TEST_PG_RESTART=1 $(GO) test -count=1 -run 'TestDatabaseRestartUnderLoad' ./test/e2e/

test-short: build
	$(GO) test -short ./...

demo: build
	bash examples/demo/demo.sh

# The demo, then its coordinator keeps running with the web console (Ctrl-C stops it).
demo-console: build
	DEMO_KEEP_RUNNING=1 bash examples/demo/demo.sh

# Short benchmarks, then the throughput table of issue 19 (bench/load against
# SQLite and PostgreSQL with 1 and 2 replicas, the two with signatures
# alternating between them and routed by request, 4,500 signatures each;
# every request completing at the end, then completions spread over the run).
bench: build
	$(GO) test -run '^$$' -bench . -benchtime 2s ./policy/ ./hsm/pkcs11/ ./ledger/ ./signer/...
	SETUPS="sqlite pg1 pg2 pg2-request" ORDER="ranks staggered" GO=$(GO) bash bench/load/table.sh
	SETUPS="sqlite pg1 pg2-request sqlite-webhooks pg1-webhooks" ORDER=staggered OPEN=timed GO=$(GO) bash bench/load/table.sh

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin demo-out dist
