package pgtest

import (
	"strconv"
	"strings"
	"testing"
)

// A server of a test's own stops and starts again on the same port with
// its data, while the shared server goes on answering.
func TestOwnServerRestart(t *testing.T) {
	shared := open(t, Start(t))
	s := OwnServer(t)
	if strings.Contains(s.URL, sharedPort(t)) {
		t.Fatalf("own server %s is on the shared server's port", s.URL)
	}
	db := open(t, s.URL)
	if _, err := db.Exec(`CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before')`); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	if err := db.Ping(); err == nil {
		t.Fatal("the stopped server answers")
	}
	if err := shared.Ping(); err != nil {
		t.Fatalf("the shared server does not answer while the own one is stopped: %v", err)
	}
	s.Start()
	var v string
	if err := db.QueryRow(`SELECT v FROM kept`).Scan(&v); err != nil || v != "before" {
		t.Fatalf("after the restart: %q, %v; want the row written before", v, err)
	}
}

// sharedPort is ":PORT/" of the shared server.
func sharedPort(t *testing.T) string {
	t.Helper()
	shared.Lock()
	defer shared.Unlock()
	return ":" + strconv.Itoa(shared.srv.port) + "/"
}
