package stores

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/posbridge/posbridge/internal/db"
)

const selectStores = `SELECT store, name, active, address1, address2, city, state, postal_code, country, phone,
  email, warehouse, ship_for_pickup, source_code, external_id, created_at, updated_at FROM stores`

type scanner interface{ Scan(dest ...any) error }

func scan(row scanner) (Store, error) {
	var s Store
	err := row.Scan(&s.Store, &s.Name, &s.Active, &s.Address1, &s.Address2, &s.City, &s.State, &s.PostalCode,
		&s.Country, &s.Phone, &s.Email, &s.Warehouse, &s.ShipForPickup, &s.SourceCode, &s.ExternalID,
		&s.CreatedAt, &s.UpdatedAt)
	return s, err
}

// Get returns one store, or an error wrapping ErrNotFound.
func Get(ctx context.Context, q db.Querier, store string) (Store, error) {
	return get(ctx, q, store, "")
}

// getForChange is Get for a change of the store in conn's write
// transaction: on PostgreSQL it locks the store's row, so that two hosts
// changing one store change it one after the other, the second from what
// the first left (read unlocked, each wrote the whole store as it had
// read it: the second wiped the first's change out). SQLite's write
// transaction keeps the other writers out already.
func getForChange(ctx context.Context, conn *sql.Conn, store string) (Store, error) {
	return get(ctx, conn, store, db.ForUpdate(conn))
}

func get(ctx context.Context, q db.Querier, store, lock string) (Store, error) {
	s, err := scan(q.QueryRowContext(ctx, selectStores+` WHERE store = ?`+lock, store))
	if errors.Is(err, sql.ErrNoRows) {
		return s, fmt.Errorf("%w: %q", ErrNotFound, store)
	}
	if err != nil {
		return s, fmt.Errorf("read store %s: %w", store, db.Classify(err))
	}
	return s, nil
}

// List calls fn for every store in store number order, only the active
// ones when activeOnly is set.
func List(ctx context.Context, q db.Querier, activeOnly bool, fn func(Store) error) error {
	query := selectStores
	if activeOnly {
		query += ` WHERE active = 1`
	}
	rows, err := q.QueryContext(ctx, query+` ORDER BY store`)
	if err != nil {
		return fmt.Errorf("list stores: %w", db.Classify(err))
	}
	defer rows.Close()
	for rows.Next() {
		s, err := scan(rows)
		if err != nil {
			return fmt.Errorf("list stores: %w", err)
		}
		if err := fn(s); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list stores: %w", db.Classify(err))
	}
	return nil
}

// Warehouses returns the warehouse check of Check, reading through q.
func Warehouses(ctx context.Context, q db.Querier) WarehouseExists {
	return func(wh string) (bool, error) {
		var one int
		err := q.QueryRowContext(ctx, `SELECT 1 FROM warehouses WHERE warehouse = ?`, wh).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("look up warehouse %s: %w", wh, db.Classify(err))
		}
		return true, nil
	}
}

// change says what saving a store did.
type change int

const (
	unchanged change = iota
	added
	changed
)

// save writes s over the store of the same number, if any. Timestamps are
// the database's: created_at when the store is added, updated_at when a
// field changes.
func save(ctx context.Context, conn *sql.Conn, s Store) (change, error) {
	old, err := getForChange(ctx, conn, s.Store)
	switch {
	case errors.Is(err, ErrNotFound):
		now := db.Now()
		_, err = conn.ExecContext(ctx, `INSERT INTO stores(store, name, active, address1, address2, city, state,
  postal_code, country, phone, email, warehouse, ship_for_pickup, source_code, external_id, created_at, updated_at)
VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`, s.Store, s.Name, s.Active, s.Address1, s.Address2, s.City, s.State,
			s.PostalCode, s.Country, s.Phone, s.Email, s.Warehouse, s.ShipForPickup, s.SourceCode, s.ExternalID, now, now)
		if err != nil {
			return 0, fmt.Errorf("add store %s: %w", s.Store, db.Classify(err))
		}
		return added, nil
	case err != nil:
		return 0, err
	}
	s.CreatedAt, s.UpdatedAt = old.CreatedAt, old.UpdatedAt
	if s == old {
		return unchanged, nil
	}
	_, err = conn.ExecContext(ctx, `UPDATE stores SET name = ?, active = ?, address1 = ?, address2 = ?, city = ?,
  state = ?, postal_code = ?, country = ?, phone = ?, email = ?, warehouse = ?, ship_for_pickup = ?,
  source_code = ?, external_id = ?, updated_at = ? WHERE store = ?`, s.Name, s.Active, s.Address1, s.Address2,
		s.City, s.State, s.PostalCode, s.Country, s.Phone, s.Email, s.Warehouse, s.ShipForPickup, s.SourceCode,
		s.ExternalID, db.Now(), s.Store)
	if err != nil {
		return 0, fmt.Errorf("update store %s: %w", s.Store, db.Classify(err))
	}
	return changed, nil
}

// Add validates r and adds it as a new store. The error is an
// *InvalidError, or wraps ErrExists when the store is there already.
func Add(ctx context.Context, d *db.DB, r Record) (Store, error) {
	var s Store
	err := d.Tx(ctx, true, func(conn *sql.Conn) error {
		var err error
		if s, err = Check(r, Warehouses(ctx, conn)); err != nil {
			return err
		}
		if _, err := Get(ctx, conn, s.Store); err == nil {
			return fmt.Errorf("%w: %q", ErrExists, s.Store)
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		_, err = save(ctx, conn, s)
		if db.IsUniqueViolation(err) {
			// Another host added the store since Get found none
			// (PostgreSQL, where writers run at once): as if it had
			// added it first.
			return fmt.Errorf("%w: %q", ErrExists, s.Store)
		}
		return err
	})
	return s, err
}

// Update changes a store through edit, which receives the store as text,
// validates the result and saves it. It returns the columns that changed;
// the error is an *InvalidError, or wraps ErrNotFound.
func Update(ctx context.Context, d *db.DB, store string, edit func(*Record)) ([]string, error) {
	var diff []string
	err := d.Tx(ctx, true, func(conn *sql.Conn) error {
		old, err := getForChange(ctx, conn, store)
		if err != nil {
			return err
		}
		r := old.Record()
		edit(&r)
		r.Store = old.Store // the number is the key: an edit cannot move a store
		s, err := Check(r, Warehouses(ctx, conn))
		if err != nil {
			return err
		}
		before, after := old.Record().Values(), s.Record().Values()
		for i, c := range Columns {
			if before[i] != after[i] {
				diff = append(diff, c)
			}
		}
		_, err = save(ctx, conn, s)
		return err
	})
	return diff, err
}

// Delete removes a store; the error wraps ErrNotFound when there is none.
func Delete(ctx context.Context, d *db.DB, store string) error {
	res, err := d.ExecContext(ctx, `DELETE FROM stores WHERE store = ?`, store)
	if err != nil {
		return fmt.Errorf("delete store %s: %w", store, db.Classify(err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: %q", ErrNotFound, store)
	}
	return nil
}
