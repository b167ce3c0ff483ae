package kinesis

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"net/http"
	"time"

	"github.com/runnel-dev/runnel/streams"
)

// SubscribeToShard answers with an application/vnd.amazon.eventstream body:
// an initial-response message, then SubscribeToShardEvent messages — one
// as soon as records are durable, and an empty one at least every
// Options.Heartbeat — until the subscription's five minutes are up, the
// shard ends (the last event lists ChildShards and no continuation), the
// client goes away, or a newer subscription of the same consumer and shard
// takes over.

const subscriptionTakeover = 5 * time.Second

type subscription struct {
	started time.Time
	cancel  context.CancelFunc
	stream  string
	arn     string
}

func (h *Handler) subscribeToShard(r *request) (any, error) {
	var in subscribeInput
	if err := input(r, &in, func(v *validator) {
		if v.required("consumerARN", in.ConsumerARN != nil) {
			v.length("consumerARN", in.ConsumerARN, 1, 2048)
		}
		if v.required("shardId", in.ShardId != nil) {
			v.length("shardId", in.ShardId, 1, 128)
		}
		if v.required("startingPosition", in.StartingPosition != nil) && v.required("startingPosition.type", in.StartingPosition.Type != nil) {
			v.enum("startingPosition.type", in.StartingPosition.Type, "AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER", "TRIM_HORIZON", "LATEST", "AT_TIMESTAMP")
			v.pattern("startingPosition.sequenceNumber", in.StartingPosition.SequenceNumber, validSeqNumber, "0|([1-9]\\d{0,128})")
		}
	}); err != nil {
		return nil, err
	}
	stream, c, err := h.findConsumer(consumerRef{ConsumerARN: in.ConsumerARN})
	if err != nil {
		return nil, err
	}
	arn := h.consumerARN(stream, c)
	if out := h.consumerOut(stream, c, false); out.ConsumerStatus != "ACTIVE" {
		return nil, newErr(excResourceInUse, "Consumer %s is not in ACTIVE state.", arn)
	}
	sp := in.StartingPosition
	var ts time.Time
	if sp.Timestamp != nil {
		ts = sp.Timestamp.Time
	}
	ids, err := h.shardIDs(stream, in.ShardId)
	if err != nil {
		return nil, err
	}
	it, err := h.iteratorAt(stream, ids[0], *sp.Type, sp.SequenceNumber, sp.Timestamp != nil, ts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(r.ctx, h.opts.SubscriptionTTL)
	defer cancel()
	key := arn + "|" + streams.ShardID(it.shard)
	sub := &subscription{started: h.opts.Now(), cancel: cancel, stream: stream, arn: arn}
	h.mu.Lock()
	if old := h.mu.subs[key]; old != nil {
		if h.opts.Now().Sub(old.started) < subscriptionTakeover {
			h.mu.Unlock()
			return nil, newErr(excResourceInUse, "Another active subscription exists for this consumer: %s", key)
		}
		old.cancel()
	}
	h.mu.subs[key] = sub
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		if h.mu.subs[key] == sub {
			delete(h.mu.subs, key)
		}
		h.mu.Unlock()
	}()

	hd := r.w.Header()
	hd.Set("Content-Type", "application/vnd.amazon.eventstream")
	hd.Set("X-Amzn-Requestid", r.reqID)
	hd.Set("X-Amz-Id-2", h.extendedRequestID())
	r.w.WriteHeader(http.StatusOK)
	es := &eventWriter{w: r.w, codec: r.codec}
	if es.event("initial-response", empty{}) != nil {
		return streamed{}, nil
	}
	h.streamShard(ctx, es, it)
	return streamed{}, nil
}

// streamShard sends events until the subscription ends.
func (h *Handler) streamShard(ctx context.Context, es *eventWriter, it iterator) {
	sid := streams.ShardID(it.shard)
	pos := it.counter
	for {
		res, err := h.store.Read(it.stream, sid, pos, maxGetRecordsLimit, 1<<20)
		if err != nil {
			es.exception(asAPIError(h.mapErr(it.stream, err)))
			return
		}
		if res.Tag != it.tag {
			// The stream was deleted and created again under the
			// subscription: its shard is gone, as GetRecords says.
			es.exception(h.shardNotFound(it.stream, sid))
			return
		}
		if len(res.Records) > 0 || res.EndOfShard {
			ev := subscribeEvent{Records: make([]recordOut, len(res.Records)), MillisBehindLatest: res.MillisBehind}
			for i := range res.Records {
				rec := &res.Records[i]
				ev.Records[i] = recordOut{SequenceNumber: seqString(it.tag, it.shard, rec.Seq),
					ApproximateArrivalTimestamp: awsTime{time.UnixMilli(rec.Arrival)}, Data: rec.Data, PartitionKey: rec.PartitionKey}
			}
			pos = res.Next
			if res.EndOfShard {
				cs, err := h.childShards(it.stream, res.Children)
				if err != nil {
					es.exception(asAPIError(err))
					return
				}
				ev.ChildShards = cs
				es.event("SubscribeToShardEvent", ev)
				return
			}
			cont := seqString(it.tag, it.shard, pos-1)
			ev.ContinuationSequenceNumber = &cont
			if es.event("SubscribeToShardEvent", ev) != nil {
				return
			}
			continue
		}
		wctx, cancel := context.WithTimeout(ctx, h.opts.Heartbeat)
		err = h.store.Wait(wctx, it.stream, sid, pos)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, context.DeadlineExceeded):
			cont := seqString(it.tag, it.shard, pos-1)
			if es.event("SubscribeToShardEvent", subscribeEvent{Records: []recordOut{}, ContinuationSequenceNumber: &cont}) != nil {
				return
			}
		case err != nil:
			es.exception(asAPIError(h.mapErr(it.stream, err)))
			return
		}
	}
}

// endSubscriptions cancels every subscription to a stream (it was deleted).
func (h *Handler) endSubscriptions(stream string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.mu.subs {
		if s.stream == stream {
			s.cancel()
		}
	}
}

// endSubscriptionsOf cancels a deregistered consumer's subscriptions.
func (h *Handler) endSubscriptionsOf(consumerARN string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.mu.subs {
		if s.arn == consumerARN {
			s.cancel()
		}
	}
}

// eventWriter writes event-stream messages: a prelude (total and header
// lengths, CRC32 of both), string headers, the payload and a CRC32 of the
// whole message, flushed one by one.
type eventWriter struct {
	w     http.ResponseWriter
	codec codec
	buf   []byte
}

func (e *eventWriter) event(typ string, v any) error {
	payload, err := encode(e.codec, v)
	if err != nil {
		return err
	}
	return e.write([][2]string{{":event-type", typ}, {":content-type", e.codec.contentType()}, {":message-type", "event"}}, payload)
}

func (e *eventWriter) exception(ae *apiError) {
	payload := errorBody(e.codec, ae)
	_ = e.write([][2]string{{":exception-type", ae.Type}, {":content-type", e.codec.contentType()}, {":message-type", "exception"}}, payload)
}

func (e *eventWriter) write(headers [][2]string, payload []byte) error {
	e.buf = appendMessage(e.buf[:0], headers, payload)
	if _, err := e.w.Write(e.buf); err != nil {
		return err
	}
	if f, ok := e.w.(http.Flusher); ok {
		f.Flush()
	}
	return nil
}

// appendMessage encodes one event-stream message.
func appendMessage(b []byte, headers [][2]string, payload []byte) []byte {
	hlen := 0
	for _, h := range headers {
		hlen += 1 + len(h[0]) + 1 + 2 + len(h[1])
	}
	start := len(b)
	b = binary.BigEndian.AppendUint32(b, uint32(16+hlen+len(payload)))
	b = binary.BigEndian.AppendUint32(b, uint32(hlen))
	b = binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b[start:start+8]))
	for _, h := range headers {
		b = append(b, byte(len(h[0])))
		b = append(b, h[0]...)
		b = append(b, 7) // string value
		b = binary.BigEndian.AppendUint16(b, uint16(len(h[1])))
		b = append(b, h[1]...)
	}
	b = append(b, payload...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b[start:]))
}
