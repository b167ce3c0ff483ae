// Package testutil holds what many packages' tests share: a poll that
// waits for a condition instead of an inline deadline loop, and the check
// that goroutines a test started have returned. Only tests import it.
package testutil
