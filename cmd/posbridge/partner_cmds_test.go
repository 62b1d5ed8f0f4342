package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"
)

var (
	isoTime = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`)
	// docTime is the time shape of Increff's sales posting page.
	docTime = regexp.MustCompile(`\d\d-\d\d-\d{4}T\d\d:\d\d:\d\d`)
)

// cmdNormTime writes OUT as IN with every UTC timestamp
// (YYYY-MM-DDThh:mm:ssZ) replaced by TIME and every dd-MM-yyyy'T'HH:mm:ss
// one by dd-MM-yyyyTHH:mm:ss, so that a golden file of an export that
// carries change times compares byte for byte and still shows their shape:
//
//	normtime IN OUT
func cmdNormTime(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: normtime IN OUT")
	}
	b, err := os.ReadFile(ts.MkAbs(args[0]))
	ts.Check(err)
	b = docTime.ReplaceAll(isoTime.ReplaceAll(b, []byte("TIME")), []byte("dd-MM-yyyyTHH:mm:ss"))
	ts.Check(os.WriteFile(ts.MkAbs(args[1]), b, 0o644))
}

// cmdBatches prints, for an external-OMS inventory file (NDJSON, one batch
// a line), the locationCode and the number of products of each line:
//
//	batches FILE  →  "WH1 300\nWH1 1\n"
func cmdBatches(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: batches FILE")
	}
	f, err := os.Open(ts.MkAbs(args[0]))
	ts.Check(err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	var out strings.Builder
	for sc.Scan() {
		var b struct {
			LocationCode string            `json:"locationCode"`
			Products     []json.RawMessage `json:"products"`
		}
		if err := json.Unmarshal(sc.Bytes(), &b); err != nil {
			ts.Fatalf("%s: line is not a batch: %v", args[0], err)
		}
		fmt.Fprintf(&out, "%s %d\n", b.LocationCode, len(b.Products))
	}
	ts.Check(sc.Err())
	ts.Stdout().Write([]byte(out.String()))
}
