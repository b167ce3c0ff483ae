package jsonscan

import (
	"bytes"
	"encoding/base64"

	simd "github.com/segmentio/asm/base64"
)

// SkipValue validates the JSON value at b[i] and returns the index after
// it. The value at b[i] is at level 0 and the elements of an array or
// object at level n are at level n+1: an element at a level above
// maxDepth is an error. So is a number beyond float64's range
// (CheckNumber).
func SkipValue(b []byte, i, maxDepth int) (int, error) {
	return skipValue(b, i, 0, maxDepth)
}

func skipValue(b []byte, i, level, maxDepth int) (int, error) {
	if i >= len(b) {
		return 0, errAt(i, MsgEnd)
	}
	if level > maxDepth {
		return 0, Errorf(i, "nested deeper than %d", maxDepth)
	}
	switch c := b[i]; {
	case c == '"':
		end, _, err := ScanString(b, i)
		return end, err
	case c == '{' || c == '[':
		return skipContainer(b, i, level, maxDepth)
	case c == 't':
		return Literal(b, i, "true")
	case c == 'f':
		return Literal(b, i, "false")
	case c == 'n':
		return Literal(b, i, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		end, _, err := CheckNumber(b, i)
		return end, err
	}
	return 0, Errorf(i, "unexpected %q", b[i])
}

func skipContainer(b []byte, i, level, maxDepth int) (int, error) {
	obj := b[i] == '{'
	closer := byte(']')
	if obj {
		closer = '}'
	}
	i = SkipSpace(b, i+1)
	if i < len(b) && b[i] == closer {
		return i + 1, nil
	}
	for {
		i = SkipSpace(b, i)
		if obj {
			if i >= len(b) || b[i] != '"' {
				return 0, errAt(i, "expected a key")
			}
			end, _, err := ScanString(b, i)
			if err != nil {
				return 0, err
			}
			i = SkipSpace(b, end)
			if i >= len(b) || b[i] != ':' {
				return 0, errAt(i, "expected ':'")
			}
			i = SkipSpace(b, i+1)
		}
		end, err := skipValue(b, i, level+1, maxDepth)
		if err != nil {
			return 0, err
		}
		i = SkipSpace(b, end)
		if i >= len(b) {
			return 0, errAt(i, MsgEnd)
		}
		switch b[i] {
		case ',':
			i++
		case closer:
			return i + 1, nil
		default:
			return 0, Errorf(i, "expected ',' or '%c'", closer)
		}
	}
}

// Base64 decodes the JSON string at b[i] ('"') as standard base64 (with
// padding) straight into dst's spare capacity and returns the decoded
// bytes (aliasing dst's array) and the index after the string. ok is
// false, with nothing decoded, when the string is not plain base64 — it
// has escapes, is not a multiple of four long, holds characters outside
// the alphabet — or dst has too little room (base64.StdEncoding.
// DecodedLen of the string's length): the caller then decodes it the
// general way.
//
// The string is not scanned on its own: base64 holds only its alphabet,
// so no escapes or control characters, except that the decoder skips CR
// and LF, which JSON does not allow raw in a string. Those show in the
// length: with k of them the decoder sees len-k characters, a multiple of
// four only when k is, and returns at least three bytes fewer than
// len/4*3 less the padding.
//
// A string of simdMin characters or more is decoded by segmentio/asm's
// decoder: with AVX2 it decodes 32 characters at a time while they are all
// of the alphabet and at least 45 remain, then hands the rest to
// encoding/base64, so it accepts and decodes exactly what
// base64.StdEncoding does (TestBase64SIMDAgainstStd). A shorter one would
// go to encoding/base64 anyway, through a wrapper that costs more than it
// saves, so it goes there directly.
func Base64(dst, b []byte, i int) (data []byte, end int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	n := bytes.IndexByte(b[i+1:], '"')
	if n < 0 || n%4 != 0 {
		return nil, 0, false
	}
	v := b[i+1 : i+1+n]
	need := base64.StdEncoding.DecodedLen(n)
	if cap(dst)-len(dst) < need {
		return nil, 0, false
	}
	out := dst[len(dst) : len(dst)+need]
	var m int
	var err error
	if n >= simdMin {
		m, err = simd.StdEncoding.Decode(out, v)
	} else {
		m, err = base64.StdEncoding.Decode(out, v)
	}
	if err != nil || m != need-padding(v) {
		return nil, 0, false
	}
	return out[:m:m], i + n + 2, true
}

// simdMin is the shortest base64 string (a multiple of 4) that
// segmentio/asm's AVX2 decoder takes on.
const simdMin = 48

// padding counts the '=' that end a base64 string (at most 2).
func padding(v []byte) int {
	n := 0
	for n < 2 && n < len(v) && v[len(v)-1-n] == '=' {
		n++
	}
	return n
}
