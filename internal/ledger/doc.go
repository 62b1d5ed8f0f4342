// Package ledger records the runs of state-changing commands and every file
// that came in or went out, so operators can see what happened and the same
// file is recognised when it comes again.
package ledger
