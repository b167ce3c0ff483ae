package jobs

import (
	"context"
	"maps"

	"github.com/runnel-dev/runnel/sinks"
	"github.com/runnel-dev/runnel/state"
)

// cleanLetters puts a dead letter's error message as users read it
// (CleanMessage: no JS stack positions, no prefix repeating the letter's
// job, operator and origin fields) on its way to the dead-letter stream.
type cleanLetters struct {
	sinks.Sink
	buf []sinks.Row
}

func (c *cleanLetters) Write(ctx context.Context, rows []sinks.Row) error {
	c.buf = append(c.buf[:0], rows...)
	for i, r := range c.buf {
		m, ok := r.Value.(map[string]any)
		if !ok {
			continue
		}
		if msg, ok := m["error"].(string); ok {
			m = maps.Clone(m)
			m["error"] = CleanMessage(msg)
			c.buf[i].Value = m
		}
	}
	return c.Sink.Write(ctx, c.buf)
}

// cleanTxnLetters is cleanLetters in front of a transactional sink.
type cleanTxnLetters struct {
	*cleanLetters
	tx sinks.Transactional
}

func (c *cleanTxnLetters) OpenState(ctx context.Context, sp *state.Space) error {
	return c.tx.OpenState(ctx, sp)
}
func (c *cleanTxnLetters) PreCommit(ctx context.Context, e uint64) error {
	return c.tx.PreCommit(ctx, e)
}
func (c *cleanTxnLetters) Commit(ctx context.Context, e uint64) error { return c.tx.Commit(ctx, e) }

func cleanDeadLetters(s sinks.Sink) sinks.Sink {
	c := &cleanLetters{Sink: s}
	if tx, ok := s.(sinks.Transactional); ok {
		return &cleanTxnLetters{cleanLetters: c, tx: tx}
	}
	return c
}
