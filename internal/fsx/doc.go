// Package fsx writes files so that a reader never sees half of one: write
// to a temporary name in the same folder, fsync, rename, fsync the folder.
package fsx
