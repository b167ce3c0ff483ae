package functions

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// rec builds the record filters see from JSON.
func rec(t *testing.T, src string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(src), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// Lambda's filter rule syntax, one row per form: the pattern, records
// that match and records that do not.
func TestFilterPatterns(t *testing.T) {
	for _, tc := range []struct {
		name    string
		pattern string
		match   []string
		nomatch []string
	}{
		{"exact string", `{"partitionKey": ["a"]}`,
			[]string{`{"partitionKey": "a"}`},
			[]string{`{"partitionKey": "b"}`, `{}`, `{"partitionKey": ["b"]}`}},
		{"one of several values", `{"data": {"city": ["Oslo", "Bergen"]}}`,
			[]string{`{"data": {"city": "Bergen"}}`},
			[]string{`{"data": {"city": "Paris"}}`, `{"data": "Bergen"}`, `{"data": null}`}},
		{"number equals numerically", `{"data": {"n": [5]}}`,
			[]string{`{"data": {"n": 5}}`, `{"data": {"n": 5.0}}`},
			[]string{`{"data": {"n": "5"}}`, `{"data": {"n": 6}}`}},
		{"null", `{"data": {"x": [null]}}`,
			[]string{`{"data": {"x": null}}`},
			[]string{`{"data": {}}`, `{"data": {"x": 0}}`}},
		{"empty string", `{"data": {"x": [""]}}`,
			[]string{`{"data": {"x": ""}}`},
			[]string{`{"data": {"x": null}}`}},
		{"bool", `{"data": {"ok": [true]}}`,
			[]string{`{"data": {"ok": true}}`},
			[]string{`{"data": {"ok": false}}`, `{"data": {"ok": "true"}}`}},
		{"array value: any element", `{"data": {"tags": ["red"]}}`,
			[]string{`{"data": {"tags": ["blue", "red"]}}`},
			[]string{`{"data": {"tags": ["blue"]}}`, `{"data": {"tags": []}}`}},
		{"prefix", `{"partitionKey": [{"prefix": "vip-"}]}`,
			[]string{`{"partitionKey": "vip-7"}`, `{"partitionKey": "vip-"}`},
			[]string{`{"partitionKey": "vi"}`, `{"partitionKey": 5}`}},
		{"suffix", `{"data": {"file": [{"suffix": ".png"}]}}`,
			[]string{`{"data": {"file": "a.png"}}`},
			[]string{`{"data": {"file": "a.png.txt"}}`}},
		{"equals-ignore-case", `{"data": {"s": [{"equals-ignore-case": "ErRor"}]}}`,
			[]string{`{"data": {"s": "ERROR"}}`, `{"data": {"s": "error"}}`},
			[]string{`{"data": {"s": "errors"}}`}},
		{"numeric range", `{"data": {"t": [{"numeric": [">", 0, "<=", 5]}]}}`,
			[]string{`{"data": {"t": 0.5}}`, `{"data": {"t": 5}}`},
			[]string{`{"data": {"t": 0}}`, `{"data": {"t": 5.01}}`, `{"data": {"t": "3"}}`, `{"data": {}}`}},
		{"numeric equals", `{"data": {"t": [{"numeric": ["=", 100]}]}}`,
			[]string{`{"data": {"t": 100}}`, `{"data": {"t": 1e2}}`},
			[]string{`{"data": {"t": 101}}`}},
		{"numeric on array elements", `{"data": {"t": [{"numeric": [">=", 10]}]}}`,
			[]string{`{"data": {"t": [1, 10]}}`},
			[]string{`{"data": {"t": [1, 9]}}`}},
		{"exists", `{"data": {"user": [{"exists": true}]}}`,
			[]string{`{"data": {"user": null}}`, `{"data": {"user": {"id": 1}}}`, `{"data": {"user": []}}`},
			[]string{`{"data": {}}`, `{"data": 7}`}},
		{"does not exist", `{"data": {"user": [{"exists": false}]}}`,
			[]string{`{"data": {}}`, `{"data": {"other": 1}}`},
			[]string{`{"data": {"user": 1}}`}},
		{"anything-but a value", `{"data": {"s": [{"anything-but": "cancelled"}]}}`,
			[]string{`{"data": {"s": "paid"}}`, `{"data": {"s": 3}}`},
			[]string{`{"data": {"s": "cancelled"}}`, `{"data": {}}`}},
		{"anything-but a list", `{"data": {"n": [{"anything-but": [1, 2]}]}}`,
			[]string{`{"data": {"n": 3}}`},
			[]string{`{"data": {"n": 2}}`, `{"data": {"n": 1.0}}`}},
		{"anything-but a prefix", `{"data": {"s": [{"anything-but": {"prefix": "test-"}}]}}`,
			[]string{`{"data": {"s": "prod-1"}}`},
			[]string{`{"data": {"s": "test-1"}}`}},
		{"matchers of a list are or-ed", `{"data": {"n": [0, {"numeric": [">", 10]}]}}`,
			[]string{`{"data": {"n": 0}}`, `{"data": {"n": 11}}`},
			[]string{`{"data": {"n": 5}}`}},
		{"fields are and-ed", `{"partitionKey": ["a"], "data": {"n": [1]}}`,
			[]string{`{"partitionKey": "a", "data": {"n": 1}}`},
			[]string{`{"partitionKey": "a", "data": {"n": 2}}`, `{"partitionKey": "b", "data": {"n": 1}}`}},
		{"$or", `{"$or": [{"partitionKey": ["a"]}, {"data": {"n": [1]}}]}`,
			[]string{`{"partitionKey": "a"}`, `{"partitionKey": "b", "data": {"n": 1}}`},
			[]string{`{"partitionKey": "b", "data": {"n": 2}}`}},
		{"nested objects", `{"data": {"user": {"tier": ["gold"]}}}`,
			[]string{`{"data": {"user": {"tier": "gold", "id": 1}}}`},
			[]string{`{"data": {"user": "gold"}}`, `{"data": {}}`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ParseFilter(tc.pattern)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range tc.match {
				if !f.Match(rec(t, m)) {
					t.Errorf("%s does not match %s; it should", tc.pattern, m)
				}
			}
			for _, m := range tc.nomatch {
				if f.Match(rec(t, m)) {
					t.Errorf("%s matches %s; it should not", tc.pattern, m)
				}
			}
		})
	}
}

// Several patterns: a record passes when any one matches; no pattern
// passes everything.
func TestFilterPatternsAreOred(t *testing.T) {
	f, err := ParseFilter(`{"partitionKey": ["a"]}`, `{"partitionKey": ["b"]}`)
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]bool{"a": true, "b": true, "c": false} {
		if got := f.Match(map[string]any{"partitionKey": key}); got != want {
			t.Errorf("key %s: match %v, want %v", key, got, want)
		}
	}
	empty, _ := ParseFilter()
	if !empty.Match(map[string]any{}) || !(*Filter)(nil).Match(1) {
		t.Error("an empty filter must pass every record")
	}
}

// Invalid patterns are refused with a message naming where and what.
func TestFilterPatternErrors(t *testing.T) {
	for _, tc := range []struct{ pattern, msg string }{
		{`{"data": `, "not JSON"},
		{`["a"]`, "must be a JSON object"},
		{`{}`, "empty pattern"},
		{`{"k": []}`, "k: an empty list"},
		{`{"k": "a"}`, "k: must be a list of matchers"},
		{`{"k": [{"prefix": 1}]}`, "k[0].prefix: takes a string"},
		{`{"k": [{"numeric": [">", "a"]}]}`, "must be a number"},
		{`{"k": [{"numeric": ["~", 1]}]}`, `"~" is not an operator`},
		{`{"k": [{"numeric": ["=", 1, "<", 2]}]}`, "= stands alone"},
		{`{"k": [{"exists": "yes"}]}`, "takes true or false"},
		{`{"k": [{"wildcard": "a*"}]}`, `unknown matcher "wildcard"`},
		{`{"k": [{"prefix": "a", "suffix": "b"}]}`, "exactly one key"},
		{`{"k": [{"anything-but": []}]}`, "excludes nothing"},
		{`{"k": [{"anything-but": {"numeric": [">", 1]}}]}`, "takes {\"prefix\": s}"},
		{`{"$or": [{"k": ["a"]}]}`, "at least two"},
		{`{"a": {"b": {"c": [[1]]}}}`, "a.b.c[0]: must be a value or a matcher object"},
	} {
		_, err := ParseFilter(tc.pattern)
		if err == nil || !errors.Is(err, ErrFilter) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: error %v, want one containing %q", tc.pattern, err, tc.msg)
		}
	}
}

// FuzzFilter: no pattern crashes the compiler or the matcher.
func FuzzFilter(f *testing.F) {
	f.Add(`{"data": {"n": [{"numeric": [">", 0]}]}}`, `{"data": {"n": 1}}`)
	f.Add(`{"$or": [{"a": [1]}, {"b": [{"exists": false}]}]}`, `{"a": [1, 2]}`)
	f.Fuzz(func(t *testing.T, pattern, record string) {
		flt, err := ParseFilter(pattern)
		if err != nil {
			return
		}
		var v any
		if json.Unmarshal([]byte(record), &v) == nil {
			flt.Match(v)
		}
	})
}
