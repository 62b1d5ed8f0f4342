package db_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/db"
)

// TestWithoutKeyChecks: the checks are off inside fn only, and on again
// after it, whether fn succeeds or fails.
func TestWithoutKeyChecks(t *testing.T) {
	ctx := context.Background()
	d := openNew(t)
	conn, err := d.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	keys := func() int64 {
		t.Helper()
		var on int64
		if err := conn.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&on); err != nil {
			t.Fatal(err)
		}
		return on
	}
	boom := errors.New("boom")
	for _, ret := range []error{nil, boom} {
		var inside int64
		err := db.WithoutKeyChecks(ctx, conn, func() error {
			inside = keys()
			return ret
		})
		if !errors.Is(err, ret) || (ret == nil && err != nil) {
			t.Fatalf("fn returned %v: WithoutKeyChecks returned %v", ret, err)
		}
		if inside != 0 {
			t.Errorf("fn returning %v: foreign_keys = %d inside, want 0", ret, inside)
		}
		if after := keys(); after != 1 {
			t.Errorf("fn returning %v: foreign_keys = %d after, want 1", ret, after)
		}
	}
}

// TestWithoutKeyChecksLeftOpen: fn that leaves a transaction open gets an
// error, since the checks cannot come back on inside it; the connection is
// not handed out again with them off.
func TestWithoutKeyChecksLeftOpen(t *testing.T) {
	ctx := context.Background()
	d := openNew(t)
	conn, err := d.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = db.WithoutKeyChecks(ctx, conn, func() error {
		_, err := conn.ExecContext(ctx, "BEGIN")
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "foreign keys on: still off") {
		t.Fatalf("fn left a transaction open: WithoutKeyChecks returned %v", err)
	}
	conn.Close()
	other, err := d.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	var on int64
	if err := other.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&on); err != nil || on != 1 {
		t.Fatalf("next connection: foreign_keys = %d (%v), want 1", on, err)
	}
}
