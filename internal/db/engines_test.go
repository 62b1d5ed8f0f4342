package db_test

import (
	"path/filepath"
	"testing"

	"github.com/posbridge/posbridge/internal/db/pgtest"
)

// onEngines runs test on a new SQLite file and on a new PostgreSQL
// database, whatever backend the suite runs on: a migration is written
// once per engine.
func onEngines(t *testing.T, test func(t *testing.T, target string)) {
	t.Run("sqlite", func(t *testing.T) { test(t, filepath.Join(t.TempDir(), "posbridge.db")) })
	t.Run("postgres", func(t *testing.T) { test(t, pgtest.Start(t)) })
}
