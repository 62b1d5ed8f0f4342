// Package trigger keeps the outbound trigger table: the to-do list of records
// partners must be told about. It folds new changes into pending triggers,
// generates triggers in bulk, and gives operators list, retry, delete and
// purge.
package trigger
