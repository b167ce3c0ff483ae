package jobs

import (
	"fmt"
	"sort"
	"strings"
)

// Problem codes: stable names for each kind of job-file problem, for API
// clients that want to react to a kind rather than parse a message.
const (
	CodeYAML         = "yaml_syntax"   // the file is not valid YAML/JSON
	CodeUnknownField = "unknown_field" // a key the job-file format does not have
	CodeDuplicateKey = "duplicate_key" // the same key twice in one mapping
	CodeType         = "wrong_type"    // e.g. a list where a string belongs
	CodeMissing      = "missing_field" // a required field is absent
	CodeInvalid      = "invalid_value" // a value outside what is allowed
	CodeConflict     = "conflict"      // fields that exclude each other
	CodeDuplicateID  = "duplicate_id"  // two operators/sinks with one id
	CodeUnknownID    = "unknown_id"    // an input/late naming no operator
	CodeCycle        = "cycle"         // operators that feed each other
	CodeUnreachable  = "unreachable"   // no path from the source reaches it
	CodeDangling     = "dangling"      // an operator whose output goes nowhere
	CodeJSSyntax     = "js_syntax"     // a JS snippet that does not compile
	CodeJSError      = "js_error"      // JS that compiles but throws, or is no function, when evaluated
)

// Codes lists every problem code, for docs and clients.
var Codes = []string{CodeYAML, CodeUnknownField, CodeDuplicateKey, CodeType, CodeMissing, CodeInvalid,
	CodeConflict, CodeDuplicateID, CodeUnknownID, CodeCycle, CodeUnreachable, CodeDangling, CodeJSSyntax, CodeJSError}

// Problem is one thing wrong with a job file.
type Problem struct {
	// Line and Column locate the problem in the job file (1-based); 0 when
	// the problem concerns the whole file or the Spec was built in Go.
	Line   int `json:"line,omitempty"`
	Column int `json:"column,omitempty"`
	// Field is the path of the offending field, e.g.
	// operators[2].window.tumbling; empty for whole-file problems.
	Field string `json:"field,omitempty"`
	// Code is one of the Code* constants.
	Code string `json:"code"`
	// Message says what is wrong; Hint, when set, what is allowed or
	// what was probably meant.
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
	// For JS syntax errors: the operator id (empty for source.event_time
	// and functions) and the line and column inside the snippet, where
	// line 1, column 1 is the snippet's first character.
	Operator string `json:"operator,omitempty"`
	JSLine   int    `json:"js_line,omitempty"`
	JSColumn int    `json:"js_column,omitempty"`
}

// String renders the problem as one line:
//
//	line 14: operators[2].window.tumbling: "10x" is not a duration (e.g. 10s, 1m)
func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	if p.Hint != "" {
		b.WriteString(" (")
		b.WriteString(p.Hint)
		b.WriteString(")")
	}
	return b.String()
}

// SpecError is the error Parse and Validate return: every problem found,
// in file order.
type SpecError struct {
	Problems []Problem
}

// Error lists the problems, one per line.
func (e *SpecError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// problems collects Problems while a job file is checked.
type problems struct {
	list []Problem
}

func (ps *problems) add(p Problem) { ps.list = append(ps.list, p) }

// err returns nil when there are no problems, or a *SpecError holding them
// sorted by line (whole-file problems first), keeping the order of discovery
// within a line.
func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	out := append([]Problem(nil), ps.list...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Line < out[j].Line })
	return &SpecError{Problems: out}
}

// suggest returns a "did you mean" hint naming the candidate closest to
// got, or "" when none is close enough to be a likely typo.
func suggest(got string, candidates []string) string {
	best, bestD := "", 1<<30
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(got), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	limit := 2
	if l := len(got) / 3; l > limit {
		limit = l
	}
	if best == "" || bestD > limit {
		return ""
	}
	return fmt.Sprintf("did you mean %q?", best)
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		// Identifiers this long are not typos of each other; skip the
		// quadratic work.
		if a == b {
			return 0
		}
		return 1 << 20
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// quoteList renders names as "a", "b" or "c" for hints.
func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	switch len(q) {
	case 0:
		return ""
	case 1:
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}
