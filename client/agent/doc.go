// Package agent tails log files and sends their lines to streams through
// the producer library, as the Kinesis Agent and Fluent Bit's tail input
// do: files found by glob, rotation by rename and by copy-truncate
// followed, multi-line records joined by a start pattern, lines parsed as
// JSON, CSV or a regex with named groups into JSON objects with the host
// and file added.
//
// Guarantee: a line is delivered at least once. Each file's position
// (device, inode, a fingerprint of its first bytes, and the offset up to
// which every record has been acknowledged) is written to the checkpoint
// file (written aside, fsynced, renamed) after acknowledged batches, so a
// restart resumes after the last acknowledged record: it neither loses
// lines nor repeats any beyond those sent and not yet acknowledged (or
// acknowledged after the last checkpoint write) when the agent stopped.
//
// Assumptions: lines the agent had not read when a copy-truncate rotation
// truncated the file exist only in the copy (and lines appended between
// the copy and the truncation in neither); the agent reads the copy only
// if the glob matches it (and then reads it whole, so a glob should not
// match copies). A file deleted is read to its end only by a running
// agent that has it open. A file renamed out of the
// glob is read to its end while the agent runs (for rotate_wait after it
// last grew or the rename was noticed), and found again by its inode and
// fingerprint in the same directory after a restart if the checkpoint
// knew it.
//
// Files: config.go (the YAML configuration), agent.go (the run loop and
// acknowledgements), tail.go (files, rotation, truncation), parse.go
// (formats and multi-line records), checkpoint.go.
package agent
