package kinesis

import "testing"

// TestBufPoolClasses: a pooled buffer holds what it was asked for, and a
// buffer handed back goes to the class whose requests it can serve whole.
func TestBufPoolClasses(t *testing.T) {
	for _, n := range []int{0, 1, minPooledBuf - 1, minPooledBuf, minPooledBuf + 1, 85_000, 64 << 10, maxPooledBuf - 1, maxPooledBuf, maxPooledBuf + 1} {
		b := getBuf(n)
		if len(b) != 0 || cap(b) < n {
			t.Fatalf("getBuf(%d): len %d cap %d", n, len(b), cap(b))
		}
		c := bufClass(n)
		if n > maxPooledBuf {
			if c != -1 {
				t.Fatalf("bufClass(%d) = %d, want -1 (not pooled)", n, c)
			}
			continue
		}
		if size := minPooledBuf << c; size < n || (c > 0 && size/2 >= n) {
			t.Fatalf("bufClass(%d) = %d (%d bytes), want the smallest class that holds it", n, c, size)
		}
		putBuf(b)
	}
	// A buffer that grew to an odd size serves the class below it.
	for _, c := range []int{minPooledBuf, minPooledBuf + 1, 3 * minPooledBuf, maxPooledBuf} {
		b := make([]byte, 0, c)
		putBuf(b)
		for k := 0; k < 100; k++ {
			got := getBuf(c)
			if cap(got) < c {
				t.Fatalf("after putBuf(cap %d), getBuf(%d) has cap %d", c, c, cap(got))
			}
		}
	}
}
