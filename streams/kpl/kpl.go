package kpl

import (
	"bytes"
	"crypto/md5"
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/runnel-dev/runnel/streams"
)

// Magic starts every aggregated record.
var Magic = []byte{0xF3, 0x89, 0x9A, 0xC2}

const digestLen = md5.Size

// ErrMalformed marks data that carries the magic and a matching MD5 but
// whose protobuf body is not a valid AggregatedRecord.
var ErrMalformed = errors.New("kpl: malformed aggregated record")

// Tag is a user record's optional key/value annotation.
type Tag struct {
	Key   string
	Value string
}

// UserRecord is one record a producer put through the KPL.
type UserRecord struct {
	PartitionKey string
	// ExplicitHashKey is the decimal hash key the producer chose, or ""
	// when it let the partition key decide.
	ExplicitHashKey string
	Data            []byte
	Tags            []Tag
	// SubSequence is the record's index inside its aggregated record.
	SubSequence uint64
}

// HashKey is where the user record falls in the hash-key space.
func (u *UserRecord) HashKey() (streams.HashKey, error) {
	if u.ExplicitHashKey != "" {
		return streams.ParseHashKey(u.ExplicitHashKey)
	}
	return streams.HashPartitionKey(u.PartitionKey), nil
}

// IsAggregated reports whether data is an aggregated record: the magic,
// room for the digest, and a digest that matches the body.
func IsAggregated(data []byte) bool {
	if len(data) < len(Magic)+digestLen || !bytes.Equal(data[:len(Magic)], Magic) {
		return false
	}
	body := data[len(Magic) : len(data)-digestLen]
	sum := md5.Sum(body)
	return bytes.Equal(sum[:], data[len(data)-digestLen:])
}

// Deaggregate returns the user records packed in data, or ok false when
// data is not an aggregated record (the caller keeps it whole). The
// returned records' Data alias data. An error means the data is an
// aggregated record whose body is damaged; no records are returned then.
func Deaggregate(data []byte) (recs []UserRecord, ok bool, err error) {
	if !IsAggregated(data) {
		return nil, false, nil
	}
	recs, err = decodeAggregated(data[len(Magic) : len(data)-digestLen])
	if err != nil {
		return nil, true, err
	}
	return recs, true, nil
}

// Filter keeps the records whose hash key lies in r, in order, reusing
// recs' storage. A record with an unparsable explicit hash key is an
// error: the KCL would fail on it too, and dropping it would be silent.
func Filter(recs []UserRecord, r streams.HashRange) ([]UserRecord, error) {
	out := recs[:0]
	for i := range recs {
		k, err := recs[i].HashKey()
		if err != nil {
			return nil, fmt.Errorf("kpl: user record %d: %w", recs[i].SubSequence, err)
		}
		if r.Contains(k) {
			out = append(out, recs[i])
		}
	}
	return out, nil
}

type rawRecord struct {
	pk, ehk uint64
	hasPK   bool
	hasEHK  bool
	hasData bool
	data    []byte
	tags    []Tag
}

func decodeAggregated(b []byte) ([]UserRecord, error) {
	var pks, ehks []string
	var raws []rawRecord
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, malformed("field tag", protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, malformed("partition key table", protowire.ParseError(n))
			}
			pks = append(pks, string(v))
			b = b[n:]
		case num == 2 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, malformed("explicit hash key table", protowire.ParseError(n))
			}
			ehks = append(ehks, string(v))
			b = b[n:]
		case num == 3 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, malformed("record", protowire.ParseError(n))
			}
			r, err := decodeRecord(v)
			if err != nil {
				return nil, malformed(fmt.Sprintf("record %d", len(raws)), err)
			}
			raws = append(raws, r)
			b = b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return nil, malformed(fmt.Sprintf("field %d", num), protowire.ParseError(n))
			}
			b = b[n:]
		}
	}
	out := make([]UserRecord, len(raws))
	for i, r := range raws {
		if !r.hasPK || !r.hasData {
			return nil, malformed(fmt.Sprintf("record %d", i), errors.New("missing a required field"))
		}
		if r.pk >= uint64(len(pks)) {
			return nil, malformed(fmt.Sprintf("record %d", i), fmt.Errorf("partition key index %d outside a table of %d", r.pk, len(pks)))
		}
		u := UserRecord{PartitionKey: pks[r.pk], Data: r.data, Tags: r.tags, SubSequence: uint64(i)}
		if r.hasEHK {
			if r.ehk >= uint64(len(ehks)) {
				return nil, malformed(fmt.Sprintf("record %d", i), fmt.Errorf("explicit hash key index %d outside a table of %d", r.ehk, len(ehks)))
			}
			u.ExplicitHashKey = ehks[r.ehk]
		}
		out[i] = u
	}
	return out, nil
}

func decodeRecord(b []byte) (rawRecord, error) {
	var r rawRecord
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return r, protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return r, protowire.ParseError(n)
			}
			r.pk, r.hasPK = v, true
			b = b[n:]
		case num == 2 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return r, protowire.ParseError(n)
			}
			r.ehk, r.hasEHK = v, true
			b = b[n:]
		case num == 3 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return r, protowire.ParseError(n)
			}
			r.data, r.hasData = v, true
			b = b[n:]
		case num == 4 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return r, protowire.ParseError(n)
			}
			t, err := decodeTag(v)
			if err != nil {
				return r, fmt.Errorf("tag: %w", err)
			}
			r.tags = append(r.tags, t)
			b = b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return r, protowire.ParseError(n)
			}
			b = b[n:]
		}
	}
	return r, nil
}

func decodeTag(b []byte) (Tag, error) {
	var t Tag
	hasKey := false
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return t, protowire.ParseError(n)
		}
		b = b[n:]
		if (num == 1 || num == 2) && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return t, protowire.ParseError(n)
			}
			if num == 1 {
				t.Key, hasKey = string(v), true
			} else {
				t.Value = string(v)
			}
			b = b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return t, protowire.ParseError(n)
		}
		b = b[n:]
	}
	if !hasKey {
		return t, errors.New("missing its key")
	}
	return t, nil
}

func malformed(what string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrMalformed, what, err)
}
