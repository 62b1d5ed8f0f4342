# posbridge: see README.md. Only the Go toolchain is needed for build, demo
# and test; the SFTP and XSD tests use openssh-server and libxml2-utils when
# installed (.ci/run installs them).
GO      ?= go
BIN     := bin
DEMO    := demo-data
export CGO_ENABLED ?= 0

FUZZTIME ?= 10s

STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build demo test fuzz lint bench fmt vet clean man

all: build

build:
	$(GO) build -o $(BIN)/posbridge ./cmd/posbridge
	$(GO) build -o $(BIN)/pbgen ./cmd/pbgen

# The main job on the built-in demo data, in a fresh ./demo-data folder
# (testdata/demo/posbridge.yaml).
demo: build
	@rm -rf $(DEMO)
	@sh scripts/demo.sh $(BIN)/posbridge testdata/demo/posbridge.yaml

test:
	$(GO) vet ./...
	$(GO) test -count=1 ./...

# gofmt and staticcheck (fetched through the Go module proxy).
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: the files above need formatting"; exit 1; }
	$(GO) run $(STATICCHECK) ./...

# A short run of every fuzz target (CI runs it after the tests).
fuzz:
	$(GO) test ./internal/format -run '^$$' -fuzz '^FuzzCSVReader$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/format -run '^$$' -fuzz '^FuzzXMLReader$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/format -run '^$$' -fuzz '^FuzzParseAmount$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/format -run '^$$' -fuzz '^FuzzSpreadsheetSafe$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/imports -run '^$$' -fuzz '^FuzzTxnCSV$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/imports -run '^$$' -fuzz '^FuzzTxnXML$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/inquiry -run '^$$' -fuzz '^FuzzRequest$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/imports -run '^$$' -fuzz '^FuzzEachJSON$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/orders -run '^$$' -fuzz '^FuzzOrders$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10x
	$(GO) test ./internal/returns -run '^$$' -fuzz '^FuzzReturns$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10x
	$(GO) test ./internal/wms -run '^$$' -fuzz '^FuzzWMS$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10x
	$(GO) test ./internal/partner -run '^$$' -fuzz '^FuzzXref$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10x
	$(GO) test ./internal/config -run '^$$' -fuzz '^FuzzConfig$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/catalog -run '^$$' -fuzz '^FuzzInvoiceTotals$$' -fuzztime $(FUZZTIME)

# Man pages, one per command, from the command tree (cmd/pbdocs), in ./man.
# Dated by the last commit, so that the same tree gives the same pages.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null)
man:
	@rm -rf man
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(GO) run ./cmd/pbdocs -out man

bench: build
	sh scripts/bench.sh

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN) $(DEMO) man
