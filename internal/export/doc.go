// Package export turns ready outbound triggers into partner files, exactly
// once: triggers are claimed for a numbered file, the file is written under
// a temporary name, synced and renamed, and only then is the file recorded
// complete, which makes its triggers processed. A run that dies is
// recovered by the next run of the same kind. It also writes the mass
// customer download, which has no triggers.
package export
