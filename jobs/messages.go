package jobs

import (
	"regexp"
	"strings"
)

// Messages a user reads (the error history, previews) say what failed
// once: without the job/operator/record prefix the fields beside the
// message already carry, and without the JS engine's stack positions
// ("at <eval>:56:16(29)"), which point into generated code, not the job
// file.

var (
	// jsPrefix is js.Error's prefix (job "J" operator "O" record ORIGIN:)
	// with what the runtime put before it (operator O:).
	jsPrefix = regexp.MustCompile(`^.*?(?:job "[^"]*" )?operator "[^"]*" record \S+: `)
	// recordPrefix names the record a source could not read the event
	// time of (record ORIGIN:).
	recordPrefix = regexp.MustCompile(`^record \S+@\S+: `)
	// evalFrame is one frame of a goja stack, with its function name if
	// it has one: "at <eval>:3:10(5)", "at parse.map:1:17(4)" or
	// "at f (<eval>:3:10(5))".
	evalFrame   = regexp.MustCompile(`\s*\bat (?:[\w$.<>]+ \([\w$.<>]+:\d+:\d+(?:\(\d+\))?\)|[\w$.<>]+:\d+:\d+(?:\(\d+\))?)`)
	emptyParens = regexp.MustCompile(`\s*\(\s*\)`)
)

// CleanMessage is an error message as the error history shows it: its
// JS stack positions and the prefix naming job, operator and record gone.
func CleanMessage(s string) string {
	s = jsPrefix.ReplaceAllString(s, "")
	s = recordPrefix.ReplaceAllString(s, "")
	s = evalFrame.ReplaceAllString(s, "")
	s = emptyParens.ReplaceAllString(s, "")
	return strings.TrimSpace(s)
}
