// Package jsonscan holds the byte-level pieces of JSON (RFC 8259) that
// Runnel's hand-written decoders share: whitespace, strings (validation,
// escapes, surrogate pairs, invalid UTF-8), numbers (grammar and
// conversion), literals, skipping a whole value, and base64 string values.
// Its users — sources' JSON records as Go values, the JS bridge's records
// as JS values or lazily indexed objects (FieldIter), its native evaluator
// — keep their own structure walk and build their own values from these
// pieces, as does the Kinesis PutRecords fast path (web/kinesis), which
// Base64 serves: it decodes a record's base64 Data straight into the
// request's buffer.
//
// Every function works on a byte slice and an index into it, returns the
// index after what it read, allocates nothing unless it says so, and
// reports malformed input as a *SyntaxError naming the byte offset. The
// decoding rules are encoding/json's, which JSON.parse's agree with where
// a Go string can hold the result: invalid UTF-8 and unpaired surrogate
// escapes become U+FFFD, a number beyond float64's range is an error.
package jsonscan

import (
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// SyntaxError is malformed JSON: what was wrong and the byte offset where.
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("JSON at byte %d: %s", e.Offset, e.Msg)
}

// MsgEnd is the Msg of a SyntaxError for input that ends inside a value.
const MsgEnd = "unexpected end of JSON"

func errAt(i int, msg string) error { return &SyntaxError{Offset: i, Msg: msg} }

// Errorf returns a SyntaxError at offset i, for a decoder's own checks
// (a missing ':', ',' or closing bracket).
func Errorf(i int, format string, args ...any) error {
	return &SyntaxError{Offset: i, Msg: fmt.Sprintf(format, args...)}
}

// IsSpace reports whether c is JSON whitespace.
func IsSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// SkipSpace returns the index of the first byte at or after i that is not
// whitespace (len(b) if none).
func SkipSpace(b []byte, i int) int {
	for i < len(b) && IsSpace(b[i]) {
		i++
	}
	return i
}

// Literal reads the literal word (true, false, null) at b[i].
func Literal(b []byte, i int, word string) (end int, err error) {
	if len(b)-i < len(word) || string(b[i:i+len(word)]) != word {
		return 0, errAt(i, "invalid literal, want "+word)
	}
	return i + len(word), nil
}

// StringInfo says what a string's contents hold beyond plain ASCII text.
type StringInfo uint8

const (
	// Escaped: the string has backslash escapes, so its bytes are not its
	// text (AppendUnquoted decodes it).
	Escaped StringInfo = 1 << iota
	// NonASCII: the string has bytes of 0x80 or more, so it may hold
	// invalid UTF-8 (utf8.Valid tells).
	NonASCII
)

// ScanString validates the JSON string at b[i], which must be '"', and
// returns the index after its closing quote and what its contents
// (b[i+1:end-1]) hold.
func ScanString(b []byte, i int) (end int, info StringInfo, err error) {
	start := i
	for i++; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '"':
			return i + 1, info, nil
		case c >= 0x80:
			info |= NonASCII
		case c < 0x20:
			return 0, 0, errAt(i, "control character in string")
		case c == '\\':
			info |= Escaped
			if i+1 >= len(b) {
				return 0, 0, errAt(start, MsgEnd)
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if _, ok := hex4(b, i+2); !ok {
					return 0, 0, errAt(i, `invalid \u escape`)
				}
				i += 5
			default:
				return 0, 0, errAt(i, fmt.Sprintf(`invalid escape \%c`, b[i+1]))
			}
		}
	}
	return 0, 0, errAt(start, MsgEnd)
}

// Unquote validates and decodes the JSON string at b[i] ('"'), appending
// its text to dst. It returns the extended dst and the index after the
// closing quote.
func Unquote(dst, b []byte, i int) (out []byte, end int, err error) {
	end, info, err := ScanString(b, i)
	if err != nil {
		return dst, 0, err
	}
	s := b[i+1 : end-1]
	switch {
	case info&Escaped != 0:
		return AppendUnquoted(dst, s), end, nil
	case info&NonASCII != 0:
		return AppendValidUTF8(dst, s), end, nil
	}
	return append(dst, s...), end, nil
}

// AppendUnquoted appends the text of s, the contents of a JSON string that
// ScanString accepted (between its quotes), to dst: escapes decoded, a
// surrogate pair as one character, an unpaired surrogate and each byte of
// invalid UTF-8 as U+FFFD.
func AppendUnquoted(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c >= 0x80:
			r, n := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && n == 1 {
				dst = utf8.AppendRune(dst, utf8.RuneError)
			} else {
				dst = append(dst, s[i:i+n]...)
			}
			i += n
			continue
		case c != '\\':
			// A run of plain bytes at once.
			j := i + 1
			for j < len(s) && s[j] != '\\' && s[j] < 0x80 {
				j++
			}
			dst = append(dst, s[i:j]...)
			i = j
			continue
		}
		e := s[i+1]
		i += 2
		switch e {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, _ := hex4(s, i)
			i += 4
			if utf16.IsSurrogate(r) {
				// A valid pair makes one character; otherwise the
				// surrogate is U+FFFD and a following escape stands on
				// its own.
				r2, ok := rune(0), false
				if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
					r2, ok = hex4(s, i+2)
				}
				if p := utf16.DecodeRune(r, r2); ok && p != utf8.RuneError {
					r = p
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
		default: // '"', '\\', '/'
			dst = append(dst, e)
		}
	}
	return dst
}

// AppendValidUTF8 appends s to dst with each byte of invalid UTF-8
// replaced by U+FFFD.
func AppendValidUTF8(dst, s []byte) []byte {
	for len(s) > 0 {
		r, n := utf8.DecodeRune(s)
		if r == utf8.RuneError && n == 1 {
			dst = utf8.AppendRune(dst, utf8.RuneError)
		} else {
			dst = append(dst, s[:n]...)
		}
		s = s[n:]
	}
	return dst
}

// ValidString returns s as a string, each byte of invalid UTF-8 replaced
// by U+FFFD.
func ValidString(s []byte) string {
	if utf8.Valid(s) {
		return string(s)
	}
	return string(AppendValidUTF8(make([]byte, 0, len(s)+8), s))
}

// hex4 reads four hex digits at b[i].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
