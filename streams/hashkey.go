package streams

import (
	"crypto/md5"
	"encoding/binary"
	"math/big"
	"math/bits"
	"strings"
	"unicode/utf8"
)

// HashKey is a point in the 128-bit hash-key space that shards partition.
type HashKey struct{ Hi, Lo uint64 }

// MaxHashKey is 2^128 − 1, the end of the last shard's range.
var MaxHashKey = HashKey{^uint64(0), ^uint64(0)}

// Cmp compares k and o: -1, 0 or +1.
func (k HashKey) Cmp(o HashKey) int {
	switch {
	case k.Hi < o.Hi:
		return -1
	case k.Hi > o.Hi:
		return 1
	case k.Lo < o.Lo:
		return -1
	case k.Lo > o.Lo:
		return 1
	}
	return 0
}

func (k HashKey) add(d uint64) HashKey {
	lo, c := bits.Add64(k.Lo, d, 0)
	return HashKey{k.Hi + c, lo}
}

func (k HashKey) sub1() HashKey {
	lo, b := bits.Sub64(k.Lo, 1, 0)
	return HashKey{k.Hi - b, lo}
}

func (k HashKey) big() *big.Int {
	b := new(big.Int).SetUint64(k.Hi)
	b.Lsh(b, 64)
	return b.Or(b, new(big.Int).SetUint64(k.Lo))
}

func hashKeyFromBig(b *big.Int) HashKey {
	lo := new(big.Int).And(b, new(big.Int).SetUint64(^uint64(0)))
	hi := new(big.Int).Rsh(b, 64)
	return HashKey{hi.Uint64(), lo.Uint64()}
}

// String is the decimal form the Kinesis API uses.
func (k HashKey) String() string { return k.big().String() }

// MarshalText writes the decimal form.
func (k HashKey) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText reads the decimal form.
func (k *HashKey) UnmarshalText(b []byte) error {
	v, err := ParseHashKey(string(b))
	if err != nil {
		return err
	}
	*k = v
	return nil
}

var two128 = new(big.Int).Lsh(big.NewInt(1), 128)

// ParseHashKey reads a decimal hash key in [0, 2^128−1].
func ParseHashKey(s string) (HashKey, error) {
	if s == "" || len(s) > 39 || strings.TrimLeft(s, "0123456789") != "" {
		return HashKey{}, invalid("parse hash key", "", "%q is not a decimal integer in [0, 2^128-1]", s)
	}
	b, ok := new(big.Int).SetString(s, 10)
	if !ok || b.Cmp(two128) >= 0 {
		return HashKey{}, invalid("parse hash key", "", "%q is not a decimal integer in [0, 2^128-1]", s)
	}
	return hashKeyFromBig(b), nil
}

// HashPartitionKey maps a partition key to the hash-key space as Kinesis
// does: MD5 of the key's bytes read as a big-endian unsigned 128-bit integer.
func HashPartitionKey(key string) HashKey {
	// []byte(key) would allocate for a key longer than 32 bytes (a UUID
	// is 36), once per record routed; a valid key fits a stack buffer,
	// small for the common short keys, since the buffer is zeroed first.
	var sum [md5.Size]byte
	switch {
	case len(key) <= 64:
		var buf [64]byte
		sum = md5.Sum(buf[:copy(buf[:], key)])
	case len(key) <= MaxKeyLen*utf8.UTFMax:
		var buf [MaxKeyLen * utf8.UTFMax]byte
		sum = md5.Sum(buf[:copy(buf[:], key)])
	default:
		sum = md5.Sum([]byte(key))
	}
	return HashKey{binary.BigEndian.Uint64(sum[:8]), binary.BigEndian.Uint64(sum[8:])}
}

// HashRange is an inclusive range of hash keys.
type HashRange struct {
	Start HashKey `json:"start"`
	End   HashKey `json:"end"`
}

// Contains reports whether k lies in r.
func (r HashRange) Contains(k HashKey) bool { return r.Start.Cmp(k) <= 0 && k.Cmp(r.End) <= 0 }

// Mid is (Start + End + 1) / 2, the split point that halves r: the first
// key of the upper half (End itself for a range of two keys, Start for a
// range of one).
func (r HashRange) Mid() HashKey {
	b := r.Start.big()
	b.Add(b, r.End.big())
	b.Add(b, big.NewInt(1))
	return hashKeyFromBig(b.Rsh(b, 1))
}

// EvenRanges splits the whole hash-key space into n contiguous ranges of
// (nearly) equal size; range i starts at floor(i·2^128/n) and the last ends at
// 2^128−1.
func EvenRanges(n int) []HashRange {
	out := make([]HashRange, n)
	for i := range out {
		out[i].Start = evenBoundary(i, n)
		if i+1 < n {
			out[i].End = evenBoundary(i+1, n).sub1()
		} else {
			out[i].End = MaxHashKey
		}
	}
	return out
}

func evenBoundary(i, n int) HashKey {
	b := new(big.Int).Mul(two128, big.NewInt(int64(i)))
	b.Div(b, big.NewInt(int64(n)))
	return hashKeyFromBig(b)
}
