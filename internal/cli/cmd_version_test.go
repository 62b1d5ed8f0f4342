package cli

import (
	"maps"
	"os"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/db"
)

// The linker stamp wins over Go's build information, field by field, and
// a binary with neither says so instead of printing blanks.
func TestResolveBuild(t *testing.T) {
	vcs := &debug.BuildInfo{GoVersion: "go1.99.1", Main: debug.Module{Version: "v1.4.0"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}, {Key: "vcs.modified", Value: "false"}}}
	dirty := &debug.BuildInfo{GoVersion: "go1.99.1", Main: debug.Module{Version: "v1.4.1-0.20261201100000-0123abcd+dirty"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.modified", Value: "true"}}}
	tests := []struct {
		name                 string
		bi                   *debug.BuildInfo
		version, commit, day string
		want                 buildInfo
	}{
		{"go build in a checkout", vcs, "", "", "",
			buildInfo{Version: "v1.4.0", Commit: "0123abcd", BuildDate: "2026-12-01T10:00:00Z", GoVersion: "go1.99.1"}},
		{"uncommitted changes", dirty, "", "", "",
			buildInfo{Version: "v1.4.1-0.20261201100000-0123abcd+dirty", Commit: "0123abcd-dirty", BuildDate: unknown, GoVersion: "go1.99.1"}},
		{"make build", vcs, "v1.4.0-3-g0123abc-dirty", "0123abcdef", "2026-12-02T08:00:00Z",
			buildInfo{Version: "v1.4.0-3-g0123abc-dirty", Commit: "0123abcdef", BuildDate: "2026-12-02T08:00:00Z", GoVersion: "go1.99.1"}},
		{"only a version stamped", vcs, "v2.0.0", "", "",
			buildInfo{Version: "v2.0.0", Commit: "0123abcd", BuildDate: "2026-12-01T10:00:00Z", GoVersion: "go1.99.1"}},
		{"a test binary", &debug.BuildInfo{GoVersion: "go1.99.1"}, "", "", "",
			buildInfo{Version: "(devel)", Commit: unknown, BuildDate: unknown, GoVersion: "go1.99.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := resolveBuild(tt.bi, tt.version, tt.commit, tt.day)
			tt.want.SchemaVersion = got.SchemaVersion
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
			if got.SchemaVersion < 18 {
				t.Errorf("schema version %d: want the latest migration", got.SchemaVersion)
			}
		})
	}
	if got := resolveBuild(nil, "", "", ""); got.Version != "(devel)" || got.GoVersion == "" {
		t.Errorf("without build information: %+v", got)
	}
}

// The database line says what to do about a database behind or ahead.
func TestDatabaseVersionText(t *testing.T) {
	one, none, ahead := 17, 0, 19
	for _, tt := range []struct {
		d    databaseVersion
		want string
	}{
		{databaseVersion{Path: "p.db", Status: db.SchemaPending, SchemaVersion: &one}, "p.db, schema version 17: 1 migration pending; run 'posbridge db migrate'"},
		{databaseVersion{Path: "p.db", Status: db.SchemaPending, SchemaVersion: &none}, "p.db, schema version 0: 18 migrations pending; run 'posbridge db migrate'"},
		{databaseVersion{Path: "p.db", Status: db.SchemaNewer, SchemaVersion: &ahead}, "p.db, schema version 19: newer than this posbridge (18); upgrade posbridge"},
		{databaseVersion{Path: "p.db", Status: dbNotCreated}, "p.db (not created; run 'posbridge init')"},
	} {
		if got := tt.d.text(18); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.d.Status, got, tt.want)
		}
	}
}

// make build stamps the version with -X, which does nothing, silently,
// when a name it sets does not exist: the Makefile must name this
// package and exactly the variables resolveBuild reads.
func TestMakefileStampsTheVersionVariables(t *testing.T) {
	b, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	mk := string(b)
	if !strings.Contains(mk, "STAMP      := github.com/posbridge/posbridge/internal/cli\n") {
		t.Error("the Makefile's STAMP is not this package's import path")
	}
	var names []string
	for _, m := range regexp.MustCompile(`-X \$\(STAMP\)\.(\w+)=`).FindAllStringSubmatch(mk, -1) {
		names = append(names, m[1])
	}
	// The variables, by their names as the linker sees them.
	stamped := map[string]*string{"stampVersion": &stampVersion, "stampCommit": &stampCommit, "stampDate": &stampDate}
	if len(names) != len(stamped) {
		t.Errorf("the Makefile stamps %v, want the %d variables %v", names, len(stamped), slices.Sorted(maps.Keys(stamped)))
	}
	for _, n := range names {
		if stamped[n] == nil {
			t.Errorf("the Makefile stamps %s, which is not a version variable", n)
		}
	}
	if !strings.Contains(mk, "-ldflags '$(LDFLAGS)' -o $(BIN)/posbridge ./cmd/posbridge") {
		t.Error("make build does not pass LDFLAGS to the posbridge build")
	}
}
