package window

import (
	"reflect"
	"testing"
)

func TestMemStore(t *testing.T) {
	s := NewMemStore()
	put := func(key string, start, end int64) { noErr(s.Put(key, Window{start, end}, &State{})) }
	put("b", 0, 10)
	put("a", 0, 10)
	put("a", 5, 15)
	put("c", 20, 30)
	put("a", 12, 13) // an end inserted before the last one
	put("a", 0, 10)  // overwrite: no new entry
	if s.Len() != 5 {
		t.Fatalf("Len = %d", s.Len())
	}
	keys := func(es []Entry) (out []string) {
		for _, e := range es {
			out = append(out, e.Key+"@"+string(rune('0'+e.Window.Start%10)))
		}
		return out
	}
	if got := keys(must(s.Range(0, 15))); !reflect.DeepEqual(got, []string{"a@0", "b@0", "a@2", "a@5"}) {
		t.Fatalf("Range(0,15] = %v", got)
	}
	if got := keys(must(s.Range(10, 30))); !reflect.DeepEqual(got, []string{"a@2", "a@5", "c@0"}) {
		t.Fatalf("Range(10,30] = %v", got)
	}
	noErr(s.Delete("a", Window{0, 10}))
	noErr(s.Delete("b", Window{0, 10}))
	noErr(s.Delete("a", Window{12, 13}))
	noErr(s.Delete("a", Window{99, 100})) // absent: no effect
	if s.Len() != 2 || must(s.Get("a", Window{0, 10})) != nil || must(s.Get("a", Window{5, 15})) == nil {
		t.Fatalf("after deletes: Len %d", s.Len())
	}
	// Holes left by deletes are skipped, and an end can come back.
	put("d", 3, 10)
	if got := keys(must(s.Range(-100, 100))); !reflect.DeepEqual(got, []string{"d@3", "a@5", "c@0"}) {
		t.Fatalf("Range after holes = %v", got)
	}
	if w := must(s.Windows("a")); len(w) != 1 || w[0] != (Window{5, 15}) {
		t.Fatalf("Windows(a) = %v", w)
	}
}
