package db_test

import (
	"context"
	"errors"
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
