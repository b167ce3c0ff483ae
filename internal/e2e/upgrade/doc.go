// Package upgrade holds the tests that run the current runnel binary on
// data directories written by earlier releases. The directories are
// fixtures under testdata (a tar.gz each, with the state the earlier
// binary acknowledged before it was killed, in expect.json); how they were
// made, and how to make another, is in testdata/README.md.
package upgrade
