// Package transfer moves files between local folders and sites without
// ever exposing half a file: a push uploads to a temporary name, checks the
// size and renames; a pull skips files that are young or still growing,
// downloads to a temporary name, syncs and renames, records the transfer,
// and only then deletes or archives the remote file. Sites are local
// folders for now; SFTP comes later behind the same Site interface.
package transfer
