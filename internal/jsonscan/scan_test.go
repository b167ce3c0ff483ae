package jsonscan

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/internal/testutil"
)

func TestUnquote(t *testing.T) {
	for _, c := range []struct {
		in, want string
		info     StringInfo
		err      string // part of the error, "" for none
	}{
		{in: `""`, want: ""},
		{in: `"plain" tail`, want: "plain"},
		{in: `"é"`, want: "é", info: NonASCII},
		{in: `"\" \\ \/ \b \f \n \r \t"`, want: "\" \\ / \b \f \n \r \t", info: Escaped},
		{in: `"\u00e9\u00E9"`, want: "éé", info: Escaped},
		{in: `"\ud83d\ude00"`, want: "😀", info: Escaped},
		{in: `"\ud800"`, want: "\uFFFD", info: Escaped},
		{in: `"\udc00x"`, want: "\uFFFDx", info: Escaped},
		{in: `"\ud83d\u0041"`, want: "\uFFFDA", info: Escaped},
		{in: `"\ud83d\ud83d\ude00"`, want: "\uFFFD😀", info: Escaped},
		{in: "\"a\xffb\"", want: "a\uFFFDb", info: NonASCII},
		{in: "\"\\n\xff\xfe\"", want: "\n\uFFFD\uFFFD", info: Escaped | NonASCII},
		{in: `"abc`, err: "unexpected end"},
		{in: `"abc\`, err: "unexpected end"},
		{in: "\"a\nb\"", err: "control character"},
		{in: `"\x"`, err: `invalid escape \x`},
		{in: `"\u12"`, err: `invalid \u escape`},
		{in: `"\u12g4"`, err: `invalid \u escape`},
	} {
		end, info, err := ScanString([]byte(c.in), 0)
		out, uend, uerr := Unquote([]byte("pre:"), []byte(c.in), 0)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || uerr == nil {
				t.Errorf("%q: err %v, Unquote err %v; want %q", c.in, err, uerr, c.err)
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Errorf("%q: %T is not a *SyntaxError", c.in, err)
			}
			continue
		}
		if err != nil || uerr != nil || info != c.info || end != uend || c.in[end-1] != '"' || string(out) != "pre:"+c.want {
			t.Errorf("%q: end %d info %b err %v; Unquote %q end %d err %v; want %q info %b", c.in, end, info, err, out, uend, uerr, c.want, c.info)
		}
	}
}

func TestNumbers(t *testing.T) {
	for _, c := range []struct {
		in    string
		end   int
		form  NumberForm
		float float64
		int   int64
		isInt bool
		err   bool // ScanNumber's error
		big   bool // beyond float64
	}{
		{in: "0", end: 1, isInt: true},
		{in: "-0", end: 2, float: math.Copysign(0, -1), isInt: true},
		{in: "12,", end: 2, float: 12, int: 12, isInt: true},
		{in: "-12.50]", end: 6, form: Fraction, float: -12.5},
		{in: "1e3", end: 3, form: Exponent, float: 1000},
		{in: "2.5E-3", end: 6, form: Fraction | Exponent, float: 0.0025},
		{in: "0.1", end: 3, form: Fraction, float: 0.1},
		{in: "123456789012345.6", end: 17, form: Fraction, float: 123456789012345.6},
		{in: "1234567890123456.7", end: 18, form: Fraction, float: 1234567890123456.7},
		{in: "9007199254740993", end: 16, float: 9007199254740992, int: 9007199254740993, isInt: true},
		{in: "9223372036854775807", end: 19, float: 9223372036854775807, int: math.MaxInt64, isInt: true},
		{in: "-9223372036854775808", end: 20, float: -9223372036854775808, int: math.MinInt64, isInt: true},
		{in: "9223372036854775808", end: 19, float: 9223372036854775808},
		{in: "1e400", end: 5, form: Exponent, big: true},
		{in: "01", end: 1, isInt: true},
		{in: "-", err: true},
		{in: "1.", err: true},
		{in: "1e+", err: true},
		{in: ".5", err: true},
		{in: "+1", err: true},
	} {
		end, form, err := ScanNumber([]byte(c.in), 0)
		if (err != nil) != c.err {
			t.Errorf("%q: err %v", c.in, err)
			continue
		}
		if err != nil {
			continue
		}
		num := []byte(c.in[:end])
		f, ok := Float(num, form)
		if end != c.end || form != c.form || ok == c.big || (ok && (f != c.float || math.Signbit(f) != math.Signbit(c.float))) {
			t.Errorf("%q: end %d form %b float %v ok %v; want %d %b %v big %v", c.in, end, form, f, ok, c.end, c.form, c.float, c.big)
		}
		if _, _, cerr := CheckNumber([]byte(c.in), 0); (cerr != nil) != c.big {
			t.Errorf("%q: CheckNumber err %v", c.in, cerr)
		}
		if form == 0 {
			if n, ok := Int(num); ok != c.isInt || (ok && n != c.int) {
				t.Errorf("%q: Int %d %v, want %d %v", c.in, n, ok, c.int, c.isInt)
			}
		}
	}
}

func TestSkipValue(t *testing.T) {
	for _, c := range []struct {
		in       string
		maxDepth int
		end      int // -1: an error
	}{
		{`{"a": [1, "x", {"b": null}], "c": true} tail`, 3, 39},
		{`{"a": [1, "x", {"b": null}], "c": true}`, 2, -1},
		{`[[]]`, 1, 4},
		{`[[1]]`, 1, -1},
		{`[]`, 0, 2},
		{`[1, 2,]`, 5, -1},
		{`{"a" 1}`, 5, -1},
		{`{"a": 1 "b": 2}`, 5, -1},
		{`{1: 2}`, 5, -1},
		{`[1e999]`, 5, -1},
		{`tru`, 5, -1},
		{`nul`, 5, -1},
		{`false`, 0, 5},
		{`"\u00e9"`, 0, 8},
		{`[`, 5, -1},
		{``, 5, -1},
		{`@`, 5, -1},
	} {
		end, err := SkipValue([]byte(c.in), 0, c.maxDepth)
		if c.end < 0 {
			if err == nil {
				t.Errorf("%q depth %d: no error", c.in, c.maxDepth)
			}
			continue
		}
		if err != nil || end != c.end {
			t.Errorf("%q depth %d: end %d err %v, want %d", c.in, c.maxDepth, end, err, c.end)
		}
	}
}

func TestBase64(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string
		ok   bool
	}{
		{`"aGVsbG8="`, "hello", true},
		{`"aGVsbG8h"`, "hello!", true},
		{`""`, "", true},
		{`"aGVsbA=="`, "hell", true},
		{`"aGVs\nbG8="`, "", false},     // an escape
		{"\"aGVs\r\nbG8=\"", "", false}, // raw CR LF: the decoder would skip them
		{"\"aGVsbG8h\r\nAAAA\"", "", false},
		{`"aGVsbG8"`, "", false},  // not a multiple of 4
		{`"aGVs-G8="`, "", false}, // URL alphabet
		{`"aGVsbG8=`, "", false},  // unterminated
		{`x`, "", false},
	} {
		dst := make([]byte, 3, 64)
		data, end, ok := Base64(dst, []byte(c.in+","), 0)
		if ok != c.ok || (ok && (string(data) != c.want || end != len(c.in))) {
			t.Errorf("%q: %q end %d ok %v, want %q %v", c.in, data, end, ok, c.want, c.ok)
		}
	}
	if _, _, ok := Base64(make([]byte, 0, 2), []byte(`"aGVsbG8="`), 0); ok {
		t.Error("decoded into too small a buffer")
	}
}

// checkAgainstStd compares the scanner with encoding/json on b: as a
// whole value, as a string, as a number and as base64, returning what
// differs ("" if nothing).
func checkAgainstStd(b []byte) string {
	var want any
	wantErr := json.Unmarshal(b, &want)
	i := SkipSpace(b, 0)
	end, err := SkipValue(b, i, 10000)
	ok := err == nil && SkipSpace(b, end) == len(b)
	if ok != (wantErr == nil) {
		return "SkipValue: ok " + bstr(ok) + ", encoding/json: " + errStr(wantErr)
	}
	if i < len(b) && b[i] == '"' {
		out, end, err := Unquote(nil, b, i)
		ok := err == nil && SkipSpace(b, end) == len(b)
		if ok != (wantErr == nil) {
			return "Unquote: ok " + bstr(ok) + ", encoding/json: " + errStr(wantErr)
		}
		if ok && string(out) != want.(string) {
			return "Unquote: " + string(out) + ", encoding/json: " + want.(string)
		}
		// Base64, when it decodes, agrees with encoding/json's []byte; it
		// declines only what is not plain base64.
		data, bend, bok := Base64(make([]byte, 0, len(b)), b, i)
		var wantData []byte
		stdErr := json.Unmarshal(b, &wantData)
		if bok && SkipSpace(b, bend) == len(b) && (stdErr != nil || string(data) != string(wantData)) {
			return "Base64: " + string(data) + ", encoding/json: " + string(wantData) + " " + errStr(stdErr)
		}
		end, info, _ := ScanString(b, i)
		if raw := b[i+1 : max(end-1, i+1)]; ok && info&Escaped == 0 && !bok && stdErr == nil && len(raw)%4 == 0 &&
			!strings.ContainsAny(string(raw), "\r\n") && SkipSpace(b, end) == len(b) {
			if _, err := base64.StdEncoding.DecodeString(string(raw)); err == nil {
				return "Base64 declined plain base64"
			}
		}
	}
	if ok && (b[i] == '-' || b[i] >= '0' && b[i] <= '9') {
		numEnd, form, _ := ScanNumber(b, i)
		f, fok := Float(b[i:numEnd], form)
		if !fok || f != want.(float64) || math.Signbit(f) != math.Signbit(want.(float64)) {
			return "Float: " + errStr(nil) + strings.TrimSpace(string(b)) + " differs"
		}
		var wantInt int64
		intErr := json.Unmarshal(b, &wantInt)
		if form == 0 {
			n, iok := Int(b[i:numEnd])
			if iok != (intErr == nil) || (iok && n != wantInt) {
				return "Int differs from encoding/json: " + errStr(intErr)
			}
		}
	}
	return ""
}

func bstr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func errStr(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

// FuzzAgainstEncodingJSON: on any input, valid or not, the scanner accepts
// what encoding/json accepts and decodes strings, numbers and base64 as
// it does.
func FuzzAgainstEncodingJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,2.5,"x\u00e9"]}`, `null`, `"\ud800"`, `-0.0e+1`, `[[[]]]`, `"aGVsbG8="`,
		"\"a\xffb\"", `"\ud83d\ude00"`, `123456789012345678901`, `1e400`, `{"a":1,}`, `"\u12"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if d := checkAgainstStd(b); d != "" {
			t.Fatalf("%q: %s", b, d)
		}
	})
}

// TestAgainstEncodingJSON is the fuzz test's comparison over generated
// documents, valid and damaged ones (-seed picks them).
func TestAgainstEncodingJSON(t *testing.T) {
	rng := testutil.Rand(t, 1)
	n := 20000
	if testing.Short() {
		n = 2000
	}
	for range n {
		b := []byte(genValue(rng, 3))
		if rng.IntN(3) == 0 {
			b = damage(rng, b)
		}
		if d := checkAgainstStd(b); d != "" {
			t.Fatalf("%q: %s", b, d)
		}
	}
}

// genValue writes a random JSON value, strings and numbers drawn from
// their tricky cases.
func genValue(rng *rand.Rand, depth int) string {
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	switch k := rng.IntN(8); {
	case k == 0 && depth > 0:
		var parts []string
		for n := rng.IntN(4); n > 0; n-- {
			parts = append(parts, genValue(rng, depth-1))
		}
		return "[" + strings.Join(parts, pick(",", " , ", ",\n")) + "]"
	case k == 1 && depth > 0:
		var parts []string
		for n := rng.IntN(4); n > 0; n-- {
			parts = append(parts, genString(rng)+pick(":", " : ")+genValue(rng, depth-1))
		}
		return "{" + strings.Join(parts, ",") + "}"
	case k == 2:
		return pick("true", "false", "null")
	case k == 3 || k == 4:
		return genString(rng)
	}
	return pick("0", "-0", "1", "-12", "0.5", "1e3", "2.5E-3", "1E+2", "123456789012345", "1234567890123456",
		"0.1234567890123456", "9007199254740993", "9223372036854775807", "9223372036854775808", "-9223372036854775809",
		"1e308", "1e309", "4.9e-324", "1e-400", "100000000000000000000000", "7.0", "-0.0")
}

func genString(rng *rand.Rand) string {
	parts := []string{"a", "é", "😀", `\"`, `\\`, `\/`, `\b`, `\n`, `\t`, `\u00e9`, `\u00E9`, `\ud83d\ude00`, `\ud800`,
		`\udc00`, `\ud83d\u0041`, "\xff", "\xc3", " ", "aGVs", "bG8=", "AAAA", "==", "+/"}
	var b strings.Builder
	b.WriteByte('"')
	for n := rng.IntN(6); n > 0; n-- {
		b.WriteString(parts[rng.IntN(len(parts))])
	}
	b.WriteByte('"')
	return b.String()
}

// flips are the bytes damage writes: JSON's structure and escapes.
const flips = "\"\\{}[],:0-.eE+u \n\x01\xff"

// damage flips, drops or inserts a few bytes.
func damage(rng *rand.Rand, b []byte) []byte {
	for n := 1 + rng.IntN(2); n > 0 && len(b) > 0; n-- {
		i := rng.IntN(len(b))
		switch rng.IntN(3) {
		case 0:
			b[i] = flips[rng.IntN(len(flips))]
		case 1:
			b = append(b[:i], b[i+1:]...)
		default:
			b = append(b[:i], append([]byte{flips[rng.IntN(len(flips))]}, b[i:]...)...)
		}
	}
	return b
}

// TestBase64SIMDAgainstStd holds Base64, whose decoder works 32
// characters at a time on long strings, to encoding/base64's decoding on
// strings of 0 to 600 characters, plain and damaged at random places (a
// character outside the alphabet, padding inside, CR or LF, non-zero
// trailing bits), and checks that it writes nothing past the room it
// needs (-seed picks the strings).
func TestBase64SIMDAgainstStd(t *testing.T) {
	rng := testutil.Rand(t, 1)
	n := 20000
	if testing.Short() {
		n = 2000
	}
	const bad = "=\r\n-_!. \x00\x7f\x80\xffA/+"
	for range n {
		raw := make([]byte, rng.IntN(450))
		for i := range raw {
			raw[i] = byte(rng.Uint32())
		}
		v := []byte(base64.StdEncoding.EncodeToString(raw))
		for k := rng.IntN(3); k > 0 && len(v) > 0; k-- {
			switch i := rng.IntN(len(v)); rng.IntN(4) {
			case 0:
				v[i] = bad[rng.IntN(len(bad))]
			case 1: // a different last character before the padding
				j := len(v) - 1 - padding(v)
				v[j] = base64Alphabet[rng.IntN(64)]
			case 2: // four CR or LF, which keep the length a multiple of 4
				for range 4 {
					i := rng.IntN(len(v) + 1)
					v = append(v[:i:i], append([]byte{"\r\n"[rng.IntN(2)]}, v[i:]...)...)
				}
			default:
				v = append(v[:i:i], append([]byte{bad[rng.IntN(len(bad))]}, v[i:]...)...)
			}
		}
		body := []byte(`"` + string(v) + `",`)
		need := base64.StdEncoding.DecodedLen(len(v))
		const guard = 64
		dst := make([]byte, 3, 3+need+guard)
		full := dst[:cap(dst)]
		for i := range full {
			full[i] = 0xA5
		}
		data, end, ok := Base64(dst, body, 0)

		// What Base64 did with encoding/base64's decoder.
		want, werr := base64.StdEncoding.DecodeString(string(v))
		wantOK := len(v)%4 == 0 && werr == nil &&
			len(want) == need-padding(v)
		if ok != wantOK || ok && (string(data) != string(want) || end != len(v)+2) {
			t.Fatalf("%q: %x end %d ok %v, encoding/base64: %x %v", v, data, end, ok, want, werr)
		}
		for i := 3 + need; i < len(full); i++ {
			if full[i] != 0xA5 {
				t.Fatalf("%q: wrote byte %d, %d past the room it needs", v, i, i-3-need)
			}
		}
	}
}

const base64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
