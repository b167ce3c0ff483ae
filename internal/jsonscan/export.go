package jsonscan

import "math"

// DecodeJS decodes the valid JSON value at b[i] (SkipValue accepted it)
// into the Go value goja's Export gives for what JSON.parse makes of it —
// map[string]any, []any, string, bool, nil, int64 for an integral number
// a JS number holds exactly (not -0), else float64 — and returns the
// index after it. The JS bridge exports records it never handed to JS
// with it, and its native evaluator reads fields with it, so the two
// agree with goja and with each other.
func DecodeJS(b []byte, i int) (any, int) {
	switch c := b[i]; {
	case c == '"':
		end, info, _ := ScanString(b, i)
		return StringOf(b[i+1:end-1], info), end
	case c == '{':
		m := map[string]any{}
		i = SkipSpace(b, i+1)
		for i < len(b) && b[i] != '}' {
			end, info, _ := ScanString(b, i)
			k := StringOf(b[i+1:end-1], info)
			i = SkipSpace(b, end)
			v, next := DecodeJS(b, SkipSpace(b, i+1))
			m[k] = v
			i = SkipSpace(b, next)
			if b[i] == ',' {
				i = SkipSpace(b, i+1)
			}
		}
		return m, i + 1
	case c == '[':
		a := []any{}
		i = SkipSpace(b, i+1)
		for i < len(b) && b[i] != ']' {
			v, next := DecodeJS(b, i)
			a = append(a, v)
			i = SkipSpace(b, next)
			if b[i] == ',' {
				i = SkipSpace(b, i+1)
			}
		}
		return a, i + 1
	case c == 't':
		return true, i + 4
	case c == 'f':
		return false, i + 5
	case c == 'n':
		return nil, i + 4
	}
	end, form, _ := ScanNumber(b, i)
	num := b[i:end]
	if form == 0 {
		if n, ok := Int(num); ok {
			return n, end
		}
	}
	f, _ := Float(num, form)
	if f == math.Trunc(f) && math.Abs(f) <= 1<<53 && !(f == 0 && math.Signbit(f)) {
		return int64(f), end
	}
	return f, end
}

// StringOf is the text of s, the contents of a JSON string that
// ScanString found to hold info.
func StringOf(s []byte, info StringInfo) string {
	switch {
	case info&Escaped != 0:
		return string(AppendUnquoted(make([]byte, 0, len(s)), s))
	case info&NonASCII != 0:
		return ValidString(s)
	}
	return string(s)
}
