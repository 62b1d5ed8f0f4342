package cli

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/posbridge/posbridge/internal/db"
)

// The build's own account of itself, set by the linker when make build
// stamps it (-ldflags -X, see the Makefile); empty in a plain go build,
// which falls back to what Go records in the binary.
var (
	stampVersion string
	stampCommit  string
	stampDate    string
)

// unknown stands for a commit or build date the binary does not carry.
const unknown = "unknown"

// buildInfo is the binary: its version, commit, build date, Go version
// and the schema version it expects.
type buildInfo struct {
	Version       string `json:"version"`
	Commit        string `json:"commit"`
	BuildDate     string `json:"build_date"`
	GoVersion     string `json:"go_version"`
	SchemaVersion int    `json:"schema_version"`
}

// readBuildInfo is the running binary's buildInfo.
func readBuildInfo() buildInfo {
	bi, _ := debug.ReadBuildInfo()
	return resolveBuild(bi, stampVersion, stampCommit, stampDate)
}

// resolveBuild takes each field from the linker stamp when there is one,
// else from Go's build information (the main module's version, the VCS
// revision and commit time Go records when it builds in a checkout).
func resolveBuild(bi *debug.BuildInfo, version, commit, date string) buildInfo {
	b := buildInfo{Version: "(devel)", Commit: unknown, BuildDate: unknown, GoVersion: runtime.Version(), SchemaVersion: db.LatestVersion()}
	if bi != nil {
		if bi.Main.Version != "" {
			b.Version = bi.Main.Version
		}
		if bi.GoVersion != "" {
			b.GoVersion = bi.GoVersion
		}
		modified := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Commit = s.Value
			case "vcs.time":
				b.BuildDate = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if modified && b.Commit != unknown {
			b.Commit += "-dirty" // as git describe --dirty says it
		}
	}
	for _, s := range []struct {
		field *string
		stamp string
	}{{&b.Version, version}, {&b.Commit, commit}, {&b.BuildDate, date}} {
		if s.stamp != "" {
			*s.field = s.stamp
		}
	}
	return b
}

// line is the build on one line, for --version.
func (b buildInfo) line() string {
	return fmt.Sprintf("posbridge %s (commit %s, built %s, %s, schema %d)", b.Version, b.Commit, b.BuildDate, b.GoVersion, b.SchemaVersion)
}

// What version says of a database it could not read, besides the
// db.Schema* statuses of one it could.
const (
	dbNotCreated    = "not created"
	dbNotConfigured = "not configured"
	dbError         = "error"
)

// databaseVersion is the configured database as version reports it.
type databaseVersion struct {
	Path string `json:"path"`
	// Status is db.SchemaStatus's, or one of the db* constants.
	Status        string `json:"status"`
	SchemaVersion *int   `json:"schema_version"`
	Error         string `json:"error,omitempty"`
}

// versionReport is the output of posbridge version.
type versionReport struct {
	buildInfo
	Database databaseVersion `json:"database"`
}

// text is the database line of posbridge version: what it is and what to
// do about it.
func (d databaseVersion) text(latest int) string {
	switch d.Status {
	case dbNotConfigured:
		return "not configured: " + d.Error
	case dbNotCreated:
		return d.Path + " (not created; run 'posbridge init')"
	case dbError:
		return d.Error
	}
	s := fmt.Sprintf("%s, schema version %d", d.Path, *d.SchemaVersion)
	switch d.Status {
	case db.SchemaPending:
		n := latest - *d.SchemaVersion
		return fmt.Sprintf("%s: %d migration%s pending; run 'posbridge db migrate'", s, n, plural(n))
	case db.SchemaNewer:
		return fmt.Sprintf("%s: newer than this posbridge (%d); upgrade posbridge", s, latest)
	}
	return s + " (up to date)"
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func newVersionCmd(app *App) *cobra.Command {
	var out outputFlag
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Show the version, the build and the schema versions",
		Long: `Show posbridge's version, commit, build date and Go version, the schema version
this binary expects, and the schema version of the configured database.

The database is only read: a database that does not exist is reported as
"not created" (and is not created), one that the configuration does not
locate as "not configured", one written by a newer posbridge as "newer".
None of them is an error: version exits 0. posbridge --version prints the
build on one line without looking at the database.`,
		Example: `  posbridge version
  posbridge version --output json
  posbridge --version`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			rep := versionReport{buildInfo: readBuildInfo(), Database: app.databaseVersion(cmd)}
			if out.value == "json" {
				return writeJSON(app.Out, rep)
			}
			w := app.Out
			fmt.Fprintf(w, "posbridge %s\n", rep.Version)
			fmt.Fprintf(w, "commit:          %s\n", rep.Commit)
			fmt.Fprintf(w, "built:           %s\n", rep.BuildDate)
			fmt.Fprintf(w, "go:              %s\n", rep.GoVersion)
			fmt.Fprintf(w, "schema version:  %d\n", rep.SchemaVersion)
			fmt.Fprintf(w, "database:        %s\n", rep.Database.text(rep.SchemaVersion))
			return nil
		},
	}
	out.add(cmd, "text", "json")
	return cmd
}

// databaseVersion reads the schema version of the configured database.
func (a *App) databaseVersion(cmd *cobra.Command) databaseVersion {
	cfg, err := a.Config()
	if err != nil {
		return databaseVersion{Status: dbNotConfigured, Error: err.Error()}
	}
	target := cfg.DatabasePath()
	d := databaseVersion{Path: db.Redact(target)}
	v, err := db.ReadVersion(cmd.Context(), target)
	switch {
	// A PostgreSQL database is created by its administrator, and the
	// schema in it by init: without the schema it is not created yet, as
	// a missing SQLite file (an empty SQLite file is version 0 instead,
	// which migrate brings up to date).
	case errors.Is(err, db.ErrMissing), err == nil && v == 0 && db.IsURL(target):
		d.Status = dbNotCreated
	case err != nil:
		d.Status, d.Error = dbError, err.Error()
	default:
		d.SchemaVersion = &v
		d.Status = db.SchemaStatus(v)
	}
	return d
}
