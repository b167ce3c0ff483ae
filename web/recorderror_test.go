package web

import (
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/runnel-dev/runnel/streams"
)

// TestRecordErrorSaysWhy: a record a put did not store for want of file
// descriptors is said so, not taken for a full disk; both are retryable.
func TestRecordErrorSaysWhy(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("%w: open segment: %w", streams.ErrUnavailable, syscall.EMFILE), "no file descriptors left"},
		{fmt.Errorf("%w: write segment: %w", streams.ErrUnavailable, syscall.ENOSPC), "the disk is full"},
	} {
		e := recordError(&streams.PutResult{ShardID: streams.ShardID(3), Err: c.err})
		if e.Code != "unavailable" || !strings.Contains(e.Message, c.want) {
			t.Errorf("%v: %s %q, want unavailable saying %q", c.err, e.Code, e.Message, c.want)
		}
	}
}
