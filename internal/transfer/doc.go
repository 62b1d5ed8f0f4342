// Package transfer moves files between local folders and sites without
// ever exposing half a file: a push uploads to a temporary name, checks the
// size and renames; a pull skips files that are young or still growing,
// downloads to a temporary name, syncs and renames, records the transfer,
// and only then deletes or archives the remote file. Each attempt records
// in the ledger how far it got before every step a kill would leave
// unknown, so the next run finishes a killed one without sending or
// fetching a file twice (docs/transfers.md, "Recovery after a kill").
// Sites are local folders and SFTP servers behind the Site interface.
package transfer
