package db

import (
	"context"
	"database/sql"
)

// Prepared runs statements on one connection, each prepared on its first
// use and kept: a bulk path (a load's batches, a push's ledger rows) runs
// the same few statements thousands of times. It is not safe for
// concurrent use: its owner serialises the calls.
type Prepared struct {
	Conn  *sql.Conn
	stmts map[string]*sql.Stmt
}

// ExecContext runs query on the connection (Execer).
func (p *Prepared) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := p.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// QueryContext runs the query on the connection.
func (p *Prepared) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := p.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// InsertID runs an INSERT ... RETURNING id on the connection; the row is
// read before it returns, so that the connection is free for the next
// call.
func (p *Prepared) InsertID(ctx context.Context, query string, args ...any) (int64, error) {
	st, err := p.stmt(ctx, query)
	if err != nil {
		return 0, err
	}
	var id int64
	err = st.QueryRowContext(ctx, args...).Scan(&id)
	return id, err
}

// stmt is query prepared on the connection, once.
func (p *Prepared) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := p.stmts[query]; ok {
		return st, nil
	}
	st, err := p.Conn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if p.stmts == nil {
		p.stmts = map[string]*sql.Stmt{}
	}
	p.stmts[query] = st
	return st, nil
}

// Close releases the statements; the connection stays its owner's.
func (p *Prepared) Close() {
	for _, st := range p.stmts {
		st.Close()
	}
	p.stmts = nil
}
