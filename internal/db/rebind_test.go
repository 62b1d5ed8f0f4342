package db

import "testing"

func TestRebind(t *testing.T) {
	for _, c := range []struct {
		in, want string
		numbered int
	}{
		{`SELECT 1`, `SELECT 1`, -1},
		{`SELECT a FROM t WHERE b = ? AND c = ?`, `SELECT a FROM t WHERE b = $1 AND c = $2`, -1},
		{`UPDATE t SET a = ?2 WHERE b = ?1 OR c = ?1`, `UPDATE t SET a = $2 WHERE b = $1 OR c = $1`, 2},
		// Quoted text, quoted names and comments keep their question marks
		// and do not count.
		{`SELECT '?', "a?" FROM t WHERE b = ?`, `SELECT '?', "a?" FROM t WHERE b = $1`, -1},
		{"SELECT a -- why?\nFROM t WHERE b = ?", "SELECT a -- why?\nFROM t WHERE b = $1", -1},
		{`SELECT /* ? */ a FROM t WHERE b = ?`, `SELECT /* ? */ a FROM t WHERE b = $1`, -1},
		{`SELECT 'it''s?' WHERE a = ?`, `SELECT 'it''s?' WHERE a = $1`, -1},
		// Unterminated quotes and comments are copied to the end.
		{`SELECT ? '?`, `SELECT $1 '?`, -1},
		{`SELECT ? /* ?`, `SELECT $1 /* ?`, -1},
		{`SELECT ? -- ?`, `SELECT $1 -- ?`, -1},
	} {
		got, n := rebind(c.in)
		if got != c.want || n != c.numbered {
			t.Errorf("rebind(%q) = %q, %d; want %q, %d", c.in, got, n, c.want, c.numbered)
		}
	}
}
