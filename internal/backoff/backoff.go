// Package backoff holds the delays between retries of a call to another
// system: an exponential delay with full jitter, and a sleep that the
// caller's context cuts short.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is an exponential delay with full jitter between retries.
type Backoff struct {
	Base, Max time.Duration
	n         int
}

// Next returns the delay before the next attempt.
func (b *Backoff) Next() time.Duration {
	base, top := b.Base, b.Max
	if base <= 0 {
		base = 100 * time.Millisecond
	}
	if top <= 0 {
		top = 10 * time.Second
	}
	d := base << min(b.n, 16)
	if d > top || d <= 0 {
		d = top
	}
	b.n++
	return d/2 + rand.N(d/2+1)
}

// Reset starts over after a success.
func (b *Backoff) Reset() { b.n = 0 }

// Failures is how many delays were taken since the last Reset.
func (b *Backoff) Failures() int { return b.n }

// Sleep waits d or until ctx ends.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
