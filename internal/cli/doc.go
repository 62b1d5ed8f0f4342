// Package cli is the cobra command tree of posbridge: it parses flags,
// builds the domain packages from the configuration, runs them and turns
// their results into output and exit codes. It holds no business logic.
package cli
