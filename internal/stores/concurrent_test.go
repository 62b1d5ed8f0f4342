package stores

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
	"github.com/posbridge/posbridge/internal/db/pgtest"
	"github.com/posbridge/posbridge/internal/imports"
)

// TestMain stops the throwaway PostgreSQL server the tests may start.
func TestMain(m *testing.M) { pgtest.Main(m) }

// TestStoreUpdatesAtOnce: two `stores update` of one store at once on
// PostgreSQL, one giving the phone and one the email, keep both, as one
// after the other on SQLite. Read unlocked, each wrote the whole store as
// it had read it with its own field changed: the second wiped the first's
// phone out.
func TestStoreUpdatesAtOnce(t *testing.T) {
	dbtest.WritersAtOnce(t)
	ctx := context.Background()
	d := dbtest.Open(t)
	if _, err := Add(ctx, d, Record{Store: "S01", Name: "Boulder", Active: "Y"}); err != nil {
		t.Fatal(err)
	}
	first, second := dbtest.InTurn(t, d, `SELECT 1 FROM stores WHERE store = 'S01' FOR UPDATE`,
		func(d *db.DB) error {
			_, err := Update(ctx, d, "S01", func(r *Record) { r.Phone = "303-555-0101" })
			return err
		},
		func(d *db.DB) error {
			_, err := Update(ctx, d, "S01", func(r *Record) { r.Email = "s01@example.com" })
			return err
		})
	if first != nil || second != nil {
		t.Fatalf("updates: %v, %v", first, second)
	}
	s, err := Get(ctx, d, "S01")
	if err != nil {
		t.Fatal(err)
	}
	if s.Phone != "303-555-0101" || s.Email != "s01@example.com" {
		t.Errorf("store after both updates: phone %q email %q, want both kept", s.Phone, s.Email)
	}
}

// TestStoreAddsAtOnce: two `stores add` of one new store at once on
// PostgreSQL: one adds it, the other finds it there (ErrExists), as the
// second of two on SQLite does. Both found no store and inserted it; the
// second failed on the primary key with the database's error (exit 1).
func TestStoreAddsAtOnce(t *testing.T) {
	dbtest.WritersAtOnce(t)
	ctx := context.Background()
	d := dbtest.Open(t)
	add := func(name string) func(d *db.DB) error {
		return func(d *db.DB) error {
			_, err := Add(ctx, d, Record{Store: "S05", Name: name, Active: "Y"})
			return err
		}
	}
	// The test's own uncommitted S05 holds the key: both adds find no
	// store and wait to insert theirs. Let go, it wakes both: either may
	// insert first.
	errs := [2]error{}
	errs[0], errs[1] = dbtest.InTurn(t, d, `INSERT INTO stores(store, name, active, created_at, updated_at) VALUES ('S05', 'held', 1, '', '')`,
		add("Five"), add("Five again"))
	added := oneOf(t, errs, ErrExists)
	if s, err := Get(ctx, d, "S05"); err != nil || s.Name != []string{"Five", "Five again"}[added] {
		t.Errorf("store S05: %+v %v, want add %d's", s, err, added+1)
	}
}

// TestStoreImportsAtOnce: two store uploads that add the same new store
// at once on PostgreSQL: one applies, the other fails busy (exit 75) with
// nothing applied (imports.Run: another import wrote the same records),
// and applies whole when run again, as the second of two on SQLite would
// have: S07 as that file gives it, counted changed.
func TestStoreImportsAtOnce(t *testing.T) {
	dbtest.WritersAtOnce(t)
	ctx := context.Background()
	d := dbtest.Open(t)
	dir := t.TempDir()
	paths := make([]string, 2)
	for i, name := range []string{"Seven", "Seven B"} {
		paths[i] = filepath.Join(dir, name+".csv")
		if err := os.WriteFile(paths[i], []byte("store,name,active\nS07,"+name+",Y\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(path string) func(d *db.DB) error {
		return func(d *db.DB) error { _, err := ImportStores(ctx, d, path, imports.Options{}); return err }
	}
	// As in TestStoreAddsAtOnce, either may insert first.
	errs := [2]error{}
	errs[0], errs[1] = dbtest.InTurn(t, d, `INSERT INTO stores(store, name, active, created_at, updated_at) VALUES ('S07', 'held', 1, '', '')`,
		run(paths[0]), run(paths[1]))
	busy := 1 - oneOf(t, errs, db.ErrBusy)
	res, err := ImportStores(ctx, d, paths[busy], imports.Options{})
	if err != nil || res.Applied != 1 || res.Changed != 1 {
		t.Fatalf("the busy import again: %+v %v, want S07 changed", res, err)
	}
	if s, err := Get(ctx, d, "S07"); err != nil || s.Name != []string{"Seven", "Seven B"}[busy] {
		t.Errorf("store S07: %+v %v, want the file imported last's", s, err)
	}
}

// oneOf checks that one of errs is nil and the other is want, and
// returns the index of the nil one.
func oneOf(t *testing.T, errs [2]error, want error) int {
	t.Helper()
	for i, err := range errs {
		if err == nil && errors.Is(errs[1-i], want) {
			return i
		}
	}
	t.Fatalf("errors %v, %v; want one nil and the other %v", errs[0], errs[1], want)
	return 0
}
