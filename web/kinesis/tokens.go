package kinesis

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/runnel-dev/runnel/internal/atomicfile"
)

// LoadTokenKey returns the token key kept in the file at path, creating
// the file with a new random key (mode 0600, written and synced before it
// is renamed into place) when there is none.
func LoadTokenKey(path string) ([]byte, error) {
	key, err := atomicfile.Key(path, 32)
	var ws *atomicfile.WrongSizeError
	if errors.As(err, &ws) {
		return nil, fmt.Errorf("kinesis token key %s: %d bytes, want 32 (delete it to make a new one; open iterators then end)", path, ws.Size)
	}
	if err != nil {
		return nil, fmt.Errorf("kinesis token key: %w", err)
	}
	return key, nil
}

// Shard iterators and paging tokens are opaque to clients: a payload, the
// time it was issued and an HMAC with the handler's key (Options.TokenKey:
// kept in the data directory by runnel serve, so they survive a restart).
// They are stateless: an iterator can be used any number of times until it
// expires.

const macLen = 16

// Token kinds keep a token of one list operation from being accepted by
// another.
const (
	tokIterator byte = iota + 1
	tokListStreams
	tokListShards
	tokListConsumers
)

func (h *Handler) mac(b []byte) []byte {
	m := hmac.New(sha256.New, h.key)
	m.Write(b)
	return m.Sum(nil)[:macLen]
}

// seal appends the MAC and encodes as base64.
func (h *Handler) seal(b []byte) string {
	return base64.StdEncoding.EncodeToString(append(b, h.mac(b)...))
}

// unseal checks the MAC and returns the payload.
func (h *Handler) unseal(s string) ([]byte, bool) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) < macLen+9 {
		return nil, false
	}
	p, sum := b[:len(b)-macLen], b[len(b)-macLen:]
	if !hmac.Equal(sum, h.mac(p)) {
		return nil, false
	}
	return p, true
}

// iteratorHead is the length of an iterator token's fixed part, the tag
// byte and the position (issued, stream created, shard, counter); the
// stream name follows it, then the MAC.
const iteratorHead = 1 + 8 + 8 + 4 + 8

// iterator is a position in a shard.
type iterator struct {
	issued        time.Time
	streamCreated int64 // unix nanoseconds: tells a recreated stream apart
	shard         int
	counter       uint64
	stream        string
	// tag is the stream's sequence tag, set by iteratorAt for
	// SubscribeToShard; the encoded token does not carry it (GetRecords
	// takes it from the read).
	tag uint64
}

func (h *Handler) encodeIterator(it iterator) string {
	b := make([]byte, 0, iteratorHead+len(it.stream)+macLen)
	b = append(b, tokIterator)
	b = binary.BigEndian.AppendUint64(b, uint64(it.issued.UnixMilli()))
	b = binary.BigEndian.AppendUint64(b, uint64(it.streamCreated))
	b = binary.BigEndian.AppendUint32(b, uint32(it.shard))
	b = binary.BigEndian.AppendUint64(b, it.counter)
	b = append(b, it.stream...)
	return h.seal(b)
}

func (h *Handler) decodeIterator(s string) (iterator, error) {
	p, ok := h.unseal(s)
	if !ok || len(p) < iteratorHead || p[0] != tokIterator {
		return iterator{}, newErr(excInvalidArgument, "Invalid ShardIterator.")
	}
	it := iterator{
		issued:        time.UnixMilli(int64(binary.BigEndian.Uint64(p[1:]))),
		streamCreated: int64(binary.BigEndian.Uint64(p[9:])),
		shard:         int(binary.BigEndian.Uint32(p[17:])),
		counter:       binary.BigEndian.Uint64(p[21:]),
		stream:        string(p[29:]),
	}
	now := h.opts.Now()
	if now.Sub(it.issued) > h.opts.IteratorTTL {
		return iterator{}, newErr(excExpiredIterator, "Iterator expired. The iterator was created at time %s while right now it is %s which is further in the future than the tolerated delay of %d milliseconds.",
			awsDate(it.issued), awsDate(now), h.opts.IteratorTTL.Milliseconds())
	}
	return it, nil
}

func awsDate(t time.Time) string { return t.UTC().Format("Mon Jan 02 15:04:05 UTC 2006") }

// pageToken is the state of a paged list.
type pageToken struct {
	Issued int64  `json:"i"`
	Stream string `json:"s,omitempty"`
	After  string `json:"a,omitempty"`
	Max    int    `json:"m,omitempty"`
	Filter string `json:"f,omitempty"`
	Shard  string `json:"h,omitempty"`
	TS     int64  `json:"t,omitempty"`
}

func (h *Handler) sealToken(kind byte, t pageToken) string {
	t.Issued = h.opts.Now().UnixMilli()
	b, _ := json.Marshal(t)
	return h.seal(append([]byte{kind}, b...))
}

func (h *Handler) openToken(kind byte, s string, t *pageToken) error {
	p, ok := h.unseal(s)
	if !ok || p[0] != kind || json.Unmarshal(p[1:], t) != nil {
		return newErr(excInvalidArgument, "Invalid NextToken.")
	}
	if h.opts.Now().Sub(time.UnixMilli(t.Issued)) > h.opts.IteratorTTL {
		return newErr(excExpiredNextToken, "The timestamp of the NextToken is more than %d seconds old.", int(h.opts.IteratorTTL.Seconds()))
	}
	return nil
}

func itoa(i int) string { return strconv.Itoa(i) }
