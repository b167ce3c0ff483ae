package producer

import (
	"bytes"
	"crypto/md5"
	"errors"
)

// A de-aggregator for tests, written from the published KPL format (see
// aggregate.go's comment) and independent of the encoder: its own varint
// and field walking, no protowire.

type userRecord struct {
	Key, ExplicitHashKey string
	Data                 []byte
}

var errNotAggregated = errors.New("not an aggregated record")

func testVarint(b []byte) (uint64, int, error) {
	var v uint64
	for i := 0; i < len(b) && i < 10; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i] < 0x80 {
			return v, i + 1, nil
		}
	}
	return 0, 0, errors.New("bad varint")
}

// testFields walks a protobuf message, calling f with each field's number,
// wire type, varint value or bytes.
func testFields(b []byte, f func(num int, wire int, v uint64, data []byte) error) error {
	for len(b) > 0 {
		key, n, err := testVarint(b)
		if err != nil {
			return err
		}
		b = b[n:]
		num, wire := int(key>>3), int(key&7)
		switch wire {
		case 0:
			v, n, err := testVarint(b)
			if err != nil {
				return err
			}
			b = b[n:]
			if err := f(num, wire, v, nil); err != nil {
				return err
			}
		case 2:
			l, n, err := testVarint(b)
			if err != nil || uint64(len(b)-n) < l {
				return errors.New("bad length")
			}
			if err := f(num, wire, 0, b[n:n+int(l)]); err != nil {
				return err
			}
			b = b[n+int(l):]
		default:
			return errors.New("unexpected wire type")
		}
	}
	return nil
}

// deaggregate returns the user records of an aggregated record, or
// errNotAggregated when blob lacks the magic or its MD5 does not match.
func deaggregate(blob []byte) ([]userRecord, error) {
	magic := []byte{0xF3, 0x89, 0x9A, 0xC2}
	if len(blob) < len(magic)+md5.Size || !bytes.Equal(blob[:4], magic) {
		return nil, errNotAggregated
	}
	msg, sum := blob[4:len(blob)-md5.Size], blob[len(blob)-md5.Size:]
	if s := md5.Sum(msg); !bytes.Equal(s[:], sum) {
		return nil, errNotAggregated
	}
	var pks, ehks []string
	type raw struct {
		pk, ehk  uint64
		hasEHK   bool
		data     []byte
		haveData bool
	}
	var recs []raw
	err := testFields(msg, func(num, wire int, _ uint64, data []byte) error {
		switch {
		case num == 1 && wire == 2:
			pks = append(pks, string(data))
		case num == 2 && wire == 2:
			ehks = append(ehks, string(data))
		case num == 3 && wire == 2:
			var r raw
			if err := testFields(data, func(num, wire int, v uint64, d []byte) error {
				switch {
				case num == 1 && wire == 0:
					r.pk = v
				case num == 2 && wire == 0:
					r.ehk, r.hasEHK = v, true
				case num == 3 && wire == 2:
					r.data, r.haveData = d, true
				}
				return nil
			}); err != nil {
				return err
			}
			recs = append(recs, r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]userRecord, len(recs))
	for i, r := range recs {
		if r.pk >= uint64(len(pks)) || !r.haveData || (r.hasEHK && r.ehk >= uint64(len(ehks))) {
			return nil, errors.New("record refers outside the tables")
		}
		out[i] = userRecord{Key: pks[r.pk], Data: r.data}
		if r.hasEHK {
			out[i].ExplicitHashKey = ehks[r.ehk]
		}
	}
	return out, nil
}
