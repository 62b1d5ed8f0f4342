// Package job runs the named pipelines of the configuration: it builds a
// job's plan (its steps as command lines, each parsed by the command it
// runs, which declares the locks it needs: only the CLI knows its
// commands and flags), checks the plans of a configuration, holds the
// locks of a run in the database (taking over the locks of dead runs),
// runs the steps through a function the CLI provides, and records the run
// and its steps in the runs table.
package job
