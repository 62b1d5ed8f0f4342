package ops

import (
	"testing"

	"github.com/posbridge/posbridge/internal/db/pgtest"
)

// TestMain stops the throwaway PostgreSQL server the tests may start.
func TestMain(m *testing.M) { pgtest.Main(m) }
