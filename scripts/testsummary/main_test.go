package main

import (
	"bytes"
	"strings"
	"testing"
)

// A stream as go test -json writes it: a passing package, a package with
// a failed and a skipped test and a testscript skip, and a build failure.
const stream = `{"Action":"start","Package":"example.com/a"}
{"Action":"run","Package":"example.com/a","Test":"TestOK"}
{"Action":"output","Package":"example.com/a","Test":"TestOK","Output":"=== RUN   TestOK\n"}
{"Action":"output","Package":"example.com/a","Test":"TestOK","Output":"    a_test.go:9: a log line of a passing test\n"}
{"Action":"pass","Package":"example.com/a","Test":"TestOK"}
{"Action":"output","Package":"example.com/a","Output":"PASS\n"}
{"Action":"output","Package":"example.com/a","Output":"ok  \texample.com/a\t0.01s\n"}
{"Action":"pass","Package":"example.com/a"}
{"Action":"run","Package":"example.com/b","Test":"TestSkip"}
{"Action":"output","Package":"example.com/b","Test":"TestSkip","Output":"=== RUN   TestSkip\n"}
{"Action":"output","Package":"example.com/b","Test":"TestSkip","Output":"    b_test.go:3: first a log line\n"}
{"Action":"output","Package":"example.com/b","Test":"TestSkip","Output":"    b_test.go:5: no sshd here\n"}
{"Action":"output","Package":"example.com/b","Test":"TestSkip","Output":"--- SKIP: TestSkip (0.00s)\n"}
{"Action":"skip","Package":"example.com/b","Test":"TestSkip"}
{"Action":"run","Package":"example.com/b","Test":"TestScript/root"}
{"Action":"output","Package":"example.com/b","Test":"TestScript/root","Output":"    cmd.go:380: running as root\n"}
{"Action":"output","Package":"example.com/b","Test":"TestScript/root","Output":"    testscript.go:609: WORK=$WORK\n"}
{"Action":"output","Package":"example.com/b","Test":"TestScript/root","Output":"        > [root] skip 'running as root'\n"}
{"Action":"skip","Package":"example.com/b","Test":"TestScript/root"}
{"Action":"run","Package":"example.com/b","Test":"TestBad"}
{"Action":"output","Package":"example.com/b","Test":"TestBad","Output":"=== RUN   TestBad\n"}
{"Action":"output","Package":"example.com/b","Test":"TestBad","Output":"    b_test.go:12: got 1, want 2\n"}
{"Action":"output","Package":"example.com/b","Test":"TestBad","Output":"--- FAIL: TestBad (0.00s)\n"}
{"Action":"fail","Package":"example.com/b","Test":"TestBad"}
{"Action":"run","Package":"example.com/b","Test":"TestPanics"}
{"Action":"output","Package":"example.com/b","Test":"TestPanics","Output":"panic: boom\n"}
{"Action":"output","Package":"example.com/b","Output":"FAIL\n"}
{"Action":"output","Package":"example.com/b","Output":"FAIL\texample.com/b\t0.02s\n"}
{"Action":"fail","Package":"example.com/b"}
{"ImportPath":"example.com/c","Action":"build-output","Output":"c/c.go:3:1: syntax error\n"}
{"ImportPath":"example.com/c","Action":"build-fail"}
not json
`

func TestSummary(t *testing.T) {
	var out bytes.Buffer
	s := newSummary(&out)
	if err := s.read(strings.NewReader(stream)); err != nil {
		t.Fatal(err)
	}
	s.close()
	want := `ok  	example.com/a	0.01s
    b_test.go:12: got 1, want 2
--- FAIL: TestBad (0.00s)
panic: boom
FAIL
FAIL	example.com/b	0.02s
c/c.go:3:1: syntax error
not json

skipped tests (2):
  example.com/b TestSkip: no sshd here (b_test.go:5)
  example.com/b TestScript/root: running as root (cmd.go:380)

tests: 1 passed, 1 failed, 2 skipped
`
	if out.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", out.String(), want)
	}
	if !s.buildFailed {
		t.Error("a build failure is not a failure")
	}
}
