package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"
)

// cmdJSONLines checks that every non-empty line of FILE (stdout and
// stderr included) is one JSON object, as --log-format json promises, and
// prints "N JSON lines":
//
//	jsonlines FILE
func cmdJSONLines(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: jsonlines FILE")
	}
	n := 0
	for i, line := range strings.Split(ts.ReadFile(args[0]), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var obj map[string]any
		if err := json.Unmarshal([]byte(line), &obj); err != nil {
			ts.Fatalf("%s:%d: not a JSON object: %v\n%s", args[0], i+1, err, line)
		}
		n++
	}
	fmt.Fprintf(ts.Stdout(), "%d JSON lines\n", n)
}
