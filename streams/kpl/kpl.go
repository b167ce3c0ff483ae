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

// tableNames name the fields of the aggregated message in errors.
var tableNames = map[protowire.Number]string{1: "partition key table", 2: "explicit hash key table", 3: "record"}

func decodeAggregated(b []byte) ([]UserRecord, error) {
	var pks, ehks []string
	var raws []rawRecord
	err := eachField(b, func(f field) error {
		switch {
		case f.is(1, protowire.BytesType):
			pks = append(pks, string(f.v))
		case f.is(2, protowire.BytesType):
			ehks = append(ehks, string(f.v))
		case f.is(3, protowire.BytesType):
			r, err := decodeRecord(f.v)
			if err != nil {
				return malformed(fmt.Sprintf("record %d", len(raws)), err)
			}
			raws = append(raws, r)
		}
		return nil
	})
	if fe, ok := errors.AsType[*fieldError](err); ok {
		what, named := tableNames[fe.num]
		switch {
		case fe.num == 0:
			what = "field tag"
		case !named:
			what = fmt.Sprintf("field %d", fe.num)
		}
		return nil, malformed(what, fe.err)
	}
	if err != nil {
		return nil, err
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
	err := eachField(b, func(f field) error {
		switch {
		case f.is(1, protowire.VarintType):
			r.pk, r.hasPK = f.x, true
		case f.is(2, protowire.VarintType):
			r.ehk, r.hasEHK = f.x, true
		case f.is(3, protowire.BytesType):
			r.data, r.hasData = f.v, true
		case f.is(4, protowire.BytesType):
			t, err := decodeTag(f.v)
			if err != nil {
				return fmt.Errorf("tag: %w", err)
			}
			r.tags = append(r.tags, t)
		}
		return nil
	})
	return r, err
}

func decodeTag(b []byte) (Tag, error) {
	var t Tag
	hasKey := false
	err := eachField(b, func(f field) error {
		switch {
		case f.is(1, protowire.BytesType):
			t.Key, hasKey = string(f.v), true
		case f.is(2, protowire.BytesType):
			t.Value = string(f.v)
		}
		return nil
	})
	if err == nil && !hasKey {
		err = errors.New("missing its key")
	}
	return t, err
}

// field is one field of a protobuf message: its number and type, and its
// value when it is a varint (x) or length-delimited (v).
type field struct {
	num protowire.Number
	typ protowire.Type
	x   uint64
	v   []byte
}

func (f field) is(num protowire.Number, typ protowire.Type) bool {
	return f.num == num && f.typ == typ
}

// fieldError is a field that does not parse; num is 0 for a tag.
type fieldError struct {
	num protowire.Number
	err error
}

func (e *fieldError) Error() string { return e.err.Error() }
func (e *fieldError) Unwrap() error { return e.err }

// eachField calls fn with each field of the message b, in order, and
// stops at the first error, fn's or a *fieldError. Fields of other types
// (fixed-width, groups) are skipped with their number and type only.
func eachField(b []byte, fn func(field) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return &fieldError{err: protowire.ParseError(n)}
		}
		b = b[n:]
		f := field{num: num, typ: typ}
		switch typ {
		case protowire.VarintType:
			f.x, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			f.v, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return &fieldError{num: num, err: protowire.ParseError(n)}
		}
		b = b[n:]
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

func malformed(what string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrMalformed, what, err)
}
