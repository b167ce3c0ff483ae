package kinesis

import (
	"os"
	"strings"
	"testing"
)

// TestDocsListEveryOperation ties docs/kinesis-api.md to the dispatch
// table: every operation served is documented, and the docs name none that
// is not served.
func TestDocsListEveryOperation(t *testing.T) {
	b, err := os.ReadFile("../../docs/kinesis-api.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "| ") {
			continue
		}
		cell := strings.TrimSpace(strings.Split(line, "|")[1])
		for _, name := range strings.Split(cell, ",") {
			name = strings.TrimSpace(name)
			if strings.HasPrefix(name, "Increase/Decrease") {
				documented["IncreaseStreamRetentionPeriod"], documented["DecreaseStreamRetentionPeriod"] = true, true
				continue
			}
			documented[name] = true
		}
	}
	for op := range operations {
		if !documented[op] {
			t.Errorf("operation %s is served but not in the docs' table", op)
		}
	}
	for name := range documented {
		if _, ok := operations[name]; !ok && isOpLike(name) {
			t.Errorf("docs list %s, which is not served", name)
		}
	}
}

// isOpLike tells an operation name (CamelCase verb+noun) from the other
// first cells of the docs' tables (Encodings, Errors, ...).
func isOpLike(s string) bool {
	if s == "" || s[0] < 'A' || s[0] > 'Z' || strings.Contains(s, " ") {
		return false
	}
	upper := 0
	for _, c := range s {
		if c >= 'A' && c <= 'Z' {
			upper++
		}
	}
	return upper >= 2
}
