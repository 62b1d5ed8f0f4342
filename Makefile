# posbridge: see README.md. Only the Go toolchain is needed for build, demo
# and test; the SFTP, XSD and PostgreSQL tests use openssh-server,
# libxml2-utils and postgresql when installed (.ci/run installs them).
GO      ?= go
BIN     := bin
DEMO    := demo-data
export CGO_ENABLED ?= 0

FUZZTIME ?= 10s

STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build demo test test-postgres fuzz lint bench bench-quick fmt vet clean man

all: build

# posbridge version reports what make build stamps: the git description
# of the checkout, its commit, and the commit's time as the build date (so
# that the same tree gives the same binary).
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null)
COMMIT     ?= $(shell git rev-parse HEAD 2>/dev/null)
BUILD_DATE ?= $(shell TZ=UTC git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ 2>/dev/null)
STAMP      := github.com/posbridge/posbridge/internal/cli
LDFLAGS    := -X $(STAMP).stampVersion=$(VERSION) -X $(STAMP).stampCommit=$(COMMIT) -X $(STAMP).stampDate=$(BUILD_DATE)

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/posbridge ./cmd/posbridge
	$(GO) build -o $(BIN)/pbgen ./cmd/pbgen

# The main job on the built-in demo data, in a fresh ./demo-data folder
# (testdata/demo/posbridge.yaml).
demo: build
	@rm -rf $(DEMO)
	@sh scripts/demo.sh $(BIN)/posbridge testdata/demo/posbridge.yaml

# go test through scripts/testsummary: go test's short output (each
# package's ok or FAIL, each failed test's log), then every skipped test
# with its reason, then "tests: N passed, N failed, N skipped".
test:
	$(GO) vet ./...
	@$(GO) build -o $(BIN)/testsummary ./scripts/testsummary
	$(BIN)/testsummary $(GO) -count=1 ./...

# The same suites with every posbridge database in PostgreSQL: a throwaway
# server (Debian's postgresql package) on a free loopback port, a database
# per test (internal/db/pgtest). CI runs it after make test. The tests of
# several hosts (TestMultiHost) use PostgreSQL whatever the backend, and
# make test has run them.
test-postgres:
	@$(GO) build -o $(BIN)/testsummary ./scripts/testsummary
	POSBRIDGE_TEST_BACKEND=postgres $(BIN)/testsummary $(GO) -count=1 -timeout 30m -skip '^TestMultiHost' ./...

# gofmt and staticcheck (fetched through the Go module proxy).
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: the files above need formatting"; exit 1; }
	$(GO) run $(STATICCHECK) ./...

# A short run of every fuzz target (CI runs it after the tests), each through
# scripts/fuzz.sh, which runs once more a target that Go's fuzz coordinator
# failed at the end of its window with no failing input (golang/go#75804).
fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) sh scripts/fuzz.sh ./internal/format FuzzCSVReader
	GO=$(GO) FUZZTIME=$(FUZZTIME) sh scripts/fuzz.sh ./internal/format FuzzXMLReader
	GO=$(GO) FUZZTIME=$(FUZZTIME) sh scripts/fuzz.sh ./internal/format FuzzParseAmount
	GO=$(GO) FUZZTIME=$(FUZZTIME) sh scripts/fuzz.sh ./internal/format FuzzSpreadsheetSafe
	GO=$(GO) FUZZTIME=$(FUZZTIME) sh scripts/fuzz.sh ./internal/imports FuzzTxnCSV
	GO=$(GO) FUZZTIME=$(FUZZTIME) sh scripts/fuzz.sh ./internal/imports FuzzTxnXML
	GO=$(GO) FUZZTIME=$(FUZZTIME) sh scripts/fuzz.sh ./internal/inquiry FuzzRequest
	GO=$(GO) FUZZTIME=$(FUZZTIME) sh scripts/fuzz.sh ./internal/imports FuzzEachJSON
	GO=$(GO) FUZZTIME=$(FUZZTIME) sh scripts/fuzz.sh ./internal/imports FuzzSqueezer
	GO=$(GO) FUZZTIME=$(FUZZTIME) sh scripts/fuzz.sh ./internal/transfer FuzzMembers
	GO=$(GO) FUZZTIME=$(FUZZTIME) sh scripts/fuzz.sh ./internal/orders FuzzOrders -fuzzminimizetime 10x
	GO=$(GO) FUZZTIME=$(FUZZTIME) sh scripts/fuzz.sh ./internal/returns FuzzReturns -fuzzminimizetime 10x
	GO=$(GO) FUZZTIME=$(FUZZTIME) sh scripts/fuzz.sh ./internal/wms FuzzWMS -fuzzminimizetime 10x
	GO=$(GO) FUZZTIME=$(FUZZTIME) sh scripts/fuzz.sh ./internal/partner FuzzXref -fuzzminimizetime 10x
	GO=$(GO) FUZZTIME=$(FUZZTIME) sh scripts/fuzz.sh ./internal/config FuzzConfig
	GO=$(GO) FUZZTIME=$(FUZZTIME) sh scripts/fuzz.sh ./internal/catalog FuzzInvoiceTotals

# Man pages, one per command, from the command tree (cmd/pbdocs), in ./man.
# Dated by the last commit, so that the same tree gives the same pages.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null)
man:
	@rm -rf man
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(GO) run ./cmd/pbdocs -out man

bench: build
	sh scripts/bench.sh

# bench-quick: issue 18's targets at 100,000 rows in about a minute.
bench-quick: build
	QUICK=1 sh scripts/bench.sh

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN) $(DEMO) man
