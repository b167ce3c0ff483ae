// Package units writes quantities the way the API and the CLI show them
// to people.
package units

import "strconv"

// Bytes is n bytes humanised in binary units with at most one decimal:
// "512 B", "1.5 KiB", "20 MiB", "3.2 GiB".
func Bytes(n int64) string {
	if n < 1024 && n > -1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	f := float64(n)
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		f /= 1024
		if (f < 1024 && f > -1024) || u == "TiB" {
			s := strconv.FormatFloat(f, 'f', 1, 64)
			if len(s) > 2 && s[len(s)-2:] == ".0" {
				s = s[:len(s)-2]
			}
			return s + " " + u
		}
	}
	panic("unreachable")
}
