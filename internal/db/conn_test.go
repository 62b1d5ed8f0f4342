package db_test

import (
	"context"
	"errors"
	"testing"

	"github.com/posbridge/posbridge/internal/db"
)

func TestSequences(t *testing.T) {
	ctx := context.Background()
	d := openNew(t)
	step := func(what string, got int64, err error, want int64) {
		t.Helper()
		if err != nil || got != want {
			t.Fatalf("%s = %d, %v; want %d", what, got, err, want)
		}
	}
	n, err := db.PeekSequence(ctx, d, "a")
	step("peek a on a new database", n, err, 1)
	n, err = db.NextSequence(ctx, d, "a")
	step("next a", n, err, 1)
	n, err = db.NextSequence(ctx, d, "a")
	step("next a again", n, err, 2)
	n, err = db.NextSequence(ctx, d, "b")
	step("next b, a counter of its own", n, err, 1)

	// A number taken in a transaction that rolls back is taken again.
	conn, err := d.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	undo := errors.New("undo")
	err = db.WithTx(ctx, conn, true, func() error {
		n, err := db.NextSequence(ctx, conn, "a")
		step("next a in a transaction", n, err, 3)
		return undo
	})
	if !errors.Is(err, undo) {
		t.Fatalf("WithTx = %v, want %v", err, undo)
	}
	n, err = db.PeekSequence(ctx, d, "a")
	step("peek a after the rollback", n, err, 3)
	n, err = db.PeekSequence(ctx, d, "a")
	step("peek a again: peeking takes none", n, err, 3)
}
