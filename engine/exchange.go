package engine

import (
	"context"
	"fmt"

	"github.com/runnel-dev/runnel/operators"
)

// msgKind says what a message between tasks carries.
type msgKind uint8

const (
	// msgData carries records, then the sender's watermark after them.
	msgData msgKind = iota
	// msgWatermark carries only the sender's watermark.
	msgWatermark
	// msgOpen registers input `from` (a child shard) at watermark wm
	// before it starts.
	msgOpen
	// msgIdle says input `from` is caught up and idle.
	msgIdle
	// msgEnd says input `from` ended: it sends nothing more.
	msgEnd
	// msgBarrier is a checkpoint barrier, sent by the checkpoint
	// coordinator once everything upstream of the task has passed the
	// same barrier and stopped: the task snapshots its operators and
	// answers on ack (see checkpoint.go).
	msgBarrier
)

type message struct {
	kind  msgKind
	from  string
	recs  []operators.Record
	wm    int64
	epoch uint64
	ack   chan<- error
}

// exchange is the input side of a keyed node: one bounded inbox per task.
type exchange struct {
	node  string
	inbox []chan message
}

func newExchange(node string, tasks, depth int) *exchange {
	x := &exchange{node: node, inbox: make([]chan message, tasks)}
	for i := range x.inbox {
		x.inbox[i] = make(chan message, depth)
	}
	return x
}

func (x *exchange) send(ctx context.Context, i int, m message) error {
	select {
	case x.inbox[i] <- m:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (x *exchange) broadcast(ctx context.Context, m message) error {
	for i := range x.inbox {
		if err := x.send(ctx, i, m); err != nil {
			return err
		}
	}
	return nil
}

func (x *exchange) close() {
	for _, c := range x.inbox {
		close(c)
	}
}

// exchangeOut is one sending task's side of an exchange: it keys the
// records it collected and splits them by key hash, one batch per
// destination task.
type exchangeOut struct {
	ex    *exchange
	node  string
	key   KeyFunc
	from  string
	buf   []operators.Record
	parts [][]operators.Record
	// wm is the sender's watermark, stamped on data messages; sent is the
	// last watermark each destination got.
	wm   int64
	sent []int64
}

// flush sends the buffered records, then the watermark to destinations
// that did not get it with data.
func (o *exchangeOut) flush(ctx context.Context) error {
	n := len(o.ex.inbox)
	if o.parts == nil {
		o.parts = make([][]operators.Record, n)
		o.sent = make([]int64, n)
		for i := range o.sent {
			o.sent[i] = NoWatermark
		}
	}
	if len(o.buf) > 0 {
		if err := o.key(ctx, o.buf); err != nil {
			return fmt.Errorf("key of %s: %w", o.node, err)
		}
	}
	for _, r := range o.buf {
		i := int(hashKey(r.Key) % uint32(n))
		if o.parts[i] == nil {
			o.parts[i] = getRecords()
		}
		o.parts[i] = append(o.parts[i], r)
	}
	clear(o.buf)
	o.buf = o.buf[:0]
	for i, p := range o.parts {
		if p == nil {
			continue
		}
		o.parts[i] = nil
		if err := o.ex.send(ctx, i, message{kind: msgData, from: o.from, recs: p, wm: o.wm}); err != nil {
			return err
		}
		o.sent[i] = o.wm
	}
	for i, w := range o.sent {
		if w < o.wm {
			if err := o.ex.send(ctx, i, message{kind: msgWatermark, from: o.from, wm: o.wm}); err != nil {
				return err
			}
			o.sent[i] = o.wm
		}
	}
	return nil
}

// hashKey is 32-bit FNV-1a.
func hashKey(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}
