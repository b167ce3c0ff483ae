package kinesis

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// Media types of the two encodings.
const (
	contentJSON = "application/x-amz-json-1.1"
	contentCBOR = "application/x-amz-cbor-1.1"
)

// codec is the body encoding of one request; the response uses the same.
type codec int

const (
	codecJSON codec = iota
	codecCBOR
)

func (c codec) contentType() string {
	if c == codecCBOR {
		return contentCBOR
	}
	return contentJSON
}

// awsTime is a timestamp as the API carries it: epoch seconds (a JSON
// number, fractional for milliseconds) in JSON 1.1, and epoch milliseconds
// under CBOR tag 1 in CBOR 1.1, as the Java SDKs write and read it.
type awsTime struct{ time.Time }

func (t awsTime) MarshalJSON() ([]byte, error) {
	// Written from the integer milliseconds, so that no float rounding
	// can move them: 1796534059.679, 1796534059.68, 1796534059.
	ms := t.UnixMilli()
	var b []byte
	if ms < 0 {
		b, ms = append(b, '-'), -ms
	}
	sec, frac := ms/1000, ms%1000
	b = strconv.AppendInt(b, sec, 10)
	if frac != 0 {
		f := strconv.AppendInt(nil, 1000+frac, 10)[1:] // three digits
		b = append(append(b, '.'), bytes.TrimRight(f, "0")...)
	}
	return b, nil
}

func (t *awsTime) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			t.Time = fromEpochSeconds(f)
			return nil
		}
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return fmt.Errorf("timestamp %q is neither epoch seconds nor ISO 8601", s)
		}
		t.Time = v
		return nil
	}
	if v, ok := exactEpochSeconds(string(b)); ok {
		t.Time = v
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Errorf("timestamp %s is not a number of epoch seconds", b)
	}
	t.Time = fromEpochSeconds(f)
	return nil
}

// exactEpochSeconds reads a plain decimal number of epoch seconds
// ("1796534059.679") digit by digit, so that the milliseconds a client
// wrote come back exactly (through a float64, .679 can turn into .678).
func exactEpochSeconds(s string) (time.Time, bool) {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" || len(whole) > 12 || len(frac) > 9 && strings.Trim(frac[9:], "0123456789") != "" {
		return time.Time{}, false
	}
	sec, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	var ns int64
	for i := 0; i < 9; i++ {
		ns *= 10
		if i < len(frac) {
			c := frac[i]
			if c < '0' || c > '9' {
				return time.Time{}, false
			}
			ns += int64(c - '0')
		}
	}
	if neg {
		sec, ns = -sec, -ns
	}
	return time.Unix(sec, ns).UTC(), true
}

func fromEpochSeconds(f float64) time.Time {
	if f > 1e12 || f < -1e12 {
		f = math.Copysign(1e12, f)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC()
}

func (t awsTime) MarshalCBOR() ([]byte, error) {
	b := []byte{0xc1} // tag 1: epoch-based date/time
	return appendCBORInt(b, t.UnixMilli()), nil
}

// UnmarshalCBOR reads an integer as epoch milliseconds (the Java SDKs'
// form) and a float as epoch seconds (standard CBOR), tagged or not.
func (t *awsTime) UnmarshalCBOR(b []byte) error {
	if len(b) > 0 && b[0] == 0xc1 {
		b = b[1:]
	}
	if len(b) == 0 {
		return errors.New("empty timestamp")
	}
	if b[0] == 0xf6 || b[0] == 0xf7 {
		return nil
	}
	major, info := b[0]>>5, b[0]&0x1f
	switch {
	case major == 0 || major == 1:
		n, err := cborUint(b)
		if err != nil {
			return err
		}
		ms := int64(min(n, 1<<62))
		if major == 1 {
			ms = -1 - ms
		}
		t.Time = time.UnixMilli(ms).UTC()
		return nil
	case major == 7 && (info == 25 || info == 26 || info == 27):
		var f float64
		if err := cbor.Unmarshal(b, &f); err != nil {
			return err
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return errors.New("timestamp is not finite")
		}
		t.Time = fromEpochSeconds(f)
		return nil
	}
	return errors.New("timestamp is not a number")
}

func cborUint(b []byte) (uint64, error) {
	info := b[0] & 0x1f
	switch {
	case info < 24:
		return uint64(info), nil
	case info == 24 && len(b) >= 2:
		return uint64(b[1]), nil
	case info == 25 && len(b) >= 3:
		return uint64(binary.BigEndian.Uint16(b[1:])), nil
	case info == 26 && len(b) >= 5:
		return uint64(binary.BigEndian.Uint32(b[1:])), nil
	case info == 27 && len(b) >= 9:
		return binary.BigEndian.Uint64(b[1:]), nil
	}
	return 0, errors.New("malformed CBOR integer")
}

func appendCBORInt(b []byte, v int64) []byte {
	major := byte(0)
	u := uint64(v)
	if v < 0 {
		major, u = 1<<5, uint64(-1-v)
	}
	switch {
	case u < 24:
		return append(b, major|byte(u))
	case u <= math.MaxUint8:
		return append(b, major|24, byte(u))
	case u <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, major|25), uint16(u))
	case u <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, major|26), uint32(u))
	}
	return binary.BigEndian.AppendUint64(append(b, major|27), u)
}

var (
	cborDec cbor.DecMode
	cborEnc cbor.EncMode
)

func init() {
	var err error
	cborDec, err = cbor.DecOptions{
		MaxNestedLevels:  32,
		MaxArrayElements: 100000,
		MaxMapPairs:      100000,
		DupMapKey:        cbor.DupMapKeyQuiet,
		IndefLength:      cbor.IndefLengthAllowed,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	cborEnc, err = cbor.EncOptions{Time: cbor.TimeUnixMicro}.EncMode()
	if err != nil {
		panic(err)
	}
}

// decode reads a request body into v. A body that is not a well-formed
// document of the right shape is a SerializationException, as AWS answers.
func decode(c codec, body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	var err error
	if c == codecCBOR {
		err = cborDec.Unmarshal(body, v)
	} else {
		err = json.Unmarshal(body, v)
	}
	if err != nil {
		return serializationErr(err)
	}
	return nil
}

func serializationErr(err error) *apiError {
	e := serializationErrText(err)
	e.capital = true
	return e
}

func serializationErrText(err error) *apiError {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return newErr(excSerialization, "class %s can not be converted to the type of %s", te.Value, te.Field)
		}
		return newErr(excSerialization, "Unexpected %s in request body", te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return newErr(excSerialization, "Malformed request body at offset %d: %v", se.Offset, err)
	}
	return newErr(excSerialization, "Malformed request body: %v", err)
}

// encode renders a response body.
func encode(c codec, v any) ([]byte, error) {
	if c == codecCBOR {
		return cborEnc.Marshal(v)
	}
	return json.Marshal(v)
}

// errorBody renders an exception the way the SDKs parse it.
func errorBody(c codec, e *apiError) []byte {
	var m any = struct {
		Type    string `json:"__type"`
		Message string `json:"message,omitempty"`
	}{e.Type, e.Message}
	if e.capital {
		m = struct {
			Type    string `json:"__type"`
			Message string `json:"Message,omitempty"`
		}{e.Type, e.Message}
	}
	b, err := encode(c, m)
	if err != nil {
		return []byte(`{"__type":"InternalFailure"}`)
	}
	return b
}
