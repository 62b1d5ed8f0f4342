// Package cli is the cobra command tree of posbridge: it parses flags,
// builds the domain packages from the configuration, runs them and turns
// their results into output and exit codes. It holds no business logic.
//
// A top-level command NAME and all its subcommands live in cmd_NAME.go
// (export order-events in cmd_export.go, db backup in cmd_db.go), each
// with its declareStep call when a job step may run it. What several
// commands share lives in files named for what it is: main.go (Main,
// errors and exit codes), app.go (App: configuration, database, runs),
// root.go (the root command, argument checks, command groups), output.go
// (--output, tables, records, JSON), steps.go (how commands declare what
// a job step touches, and how a job runs a step), partner.go (--partner),
// transfer.go (sites, the http flags and the report of push and pull).
// See docs/architecture.md.
package cli
