package jsonscan

import (
	"strconv"
)

// NumberForm says which optional parts a JSON number has.
type NumberForm uint8

const (
	// Fraction: the number has a '.' part.
	Fraction NumberForm = 1 << iota
	// Exponent: the number has an 'e' or 'E' part.
	Exponent
)

// ScanNumber reads the number -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
// at b[i] and returns the index after it and its form. It checks the
// grammar only: Float tells a number beyond float64's range.
func ScanNumber(b []byte, i int) (end int, form NumberForm, err error) {
	start := i
	digits := func() int {
		n := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i < len(b) && b[i] == '0' {
		i++
	} else if digits() == 0 {
		return 0, 0, errAt(start, "invalid number")
	}
	if i < len(b) && b[i] == '.' {
		i++
		form |= Fraction
		if digits() == 0 {
			return 0, 0, errAt(start, "invalid number: no digits after '.'")
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		form |= Exponent
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return 0, 0, errAt(start, "invalid number: no digits in the exponent")
		}
	}
	return i, form, nil
}

// pow10 are the powers of ten a float64 holds exactly that Float's fast
// path divides by.
var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}

// Float converts num, a number ScanNumber accepted with form form, to the
// nearest float64, as strconv.ParseFloat (and encoding/json) do; ok is
// false for a number beyond float64's range.
func Float(num []byte, form NumberForm) (f float64, ok bool) {
	// Fast path (Clinger): an integer of at most 15 digits is exact in a
	// float64, and so is a power of ten up to 1e15, so one division
	// rounds correctly.
	if form&Exponent == 0 {
		neg := num[0] == '-'
		digits := num
		if neg {
			digits = digits[1:]
		}
		if n := len(digits); n <= 15 || (form&Fraction != 0 && n <= 16) {
			var m int64
			frac := 0
			for j, c := range digits {
				if c == '.' {
					frac = len(digits) - j - 1
					continue
				}
				m = m*10 + int64(c-'0')
			}
			f := float64(m)
			if frac > 0 {
				f /= pow10[frac]
			}
			if neg {
				f = -f
			}
			return f, true
		}
	}
	f, err := strconv.ParseFloat(string(num), 64)
	return f, err == nil
}

// Int converts num, a number ScanNumber accepted without a fraction or an
// exponent, to an int64; ok is false when it does not fit.
func Int(num []byte) (n int64, ok bool) {
	neg := num[0] == '-'
	digits := num
	if neg {
		digits = digits[1:]
	}
	if len(digits) > 18 {
		// Might not fit: strconv checks.
		n, err := strconv.ParseInt(string(num), 10, 64)
		return n, err == nil
	}
	for _, c := range digits {
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// CheckNumber reads the number at b[i] as ScanNumber does and also fails
// on one beyond float64's range (only a long number or one with an
// exponent can be), so that skipping a value rejects what decoding it
// would.
func CheckNumber(b []byte, i int) (end int, form NumberForm, err error) {
	end, form, err = ScanNumber(b, i)
	if err != nil {
		return 0, 0, err
	}
	if end-i > 15 || form&Exponent != 0 {
		if _, ok := Float(b[i:end], form); !ok {
			return 0, 0, Errorf(i, "number %s out of range", b[i:end])
		}
	}
	return end, form, nil
}
