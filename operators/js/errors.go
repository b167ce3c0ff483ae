package js

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Mode is what an operator does when its JavaScript fails on a record.
type Mode int

const (
	// Fail stops the job; its status carries the *Error.
	Fail Mode = iota
	// Skip drops the record and counts it.
	Skip
	// DeadLetter drops the record from the main output and emits it, with
	// the error, to the operator's dead-letter side output.
	DeadLetter
)

func (m Mode) String() string {
	switch m {
	case Skip:
		return "skip"
	case DeadLetter:
		return "dead_letter"
	default:
		return "fail"
	}
}

// OnError is an operator's error policy (`on_error:` in the job file).
type OnError struct {
	Mode Mode
	// Stream is the dead-letter stream (Mode == DeadLetter); the runtime
	// wires operators.DeadLetterOutput(operator id) to it.
	Stream string
}

// Error is a failure of user JavaScript on one record. It names the job,
// the operator and the record's Origin. Retrying the same record will fail
// the same way (a timeout may not, if the machine was overloaded).
type Error struct {
	Job      string
	Operator string
	Origin   string
	// Err is ErrTimeout, ErrMemory, ErrStack, ErrFanOut, ErrRegex (wrapped
	// with the pattern), or the JS exception (whose
	// message includes its type, e.g. "TypeError: ...").
	Err error
}

func (e *Error) Error() string {
	return fmt.Sprintf("job %q operator %q record %s: %v", e.Job, e.Operator, e.Origin, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Retriable reports whether running the record again could succeed.
func (e *Error) Retriable() bool {
	return errors.Is(e.Err, ErrTimeout) || errors.Is(e.Err, ErrMemory) || errors.Is(e.Err, ErrRegex)
}

// ExceptionError is an exception thrown by user code.
type ExceptionError struct {
	// Message is the exception as JS prints it, e.g. "TypeError: x is undefined".
	Message string
	// Where is the place in the job file's script where it was thrown:
	// "line L col C" in the operator's expression, "functions line L col
	// C" in the functions block; empty if the exception carried no stack
	// (a thrown string) or was thrown from generated code only.
	Where string
}

func (e *ExceptionError) Error() string {
	if e.Where != "" {
		return e.Message + " (" + e.Where + ")"
	}
	return e.Message
}

// stackFrame is one frame of a goja stack: "at m.map:2:20(9)" or
// "at check (functions:2:20(6))"; its file is a snippet's name, the
// functions block or "<eval>" (the chain's generated code).
var stackFrame = regexp.MustCompile(`at (?:[^\s()]+ \()?([^\s()]+):(\d+):(\d+)(?:\(\d+\))?`)

// scriptPlace is the innermost frame of stack that lies in the user's
// script, as ExceptionError.Where says it. The JS engine's program
// counters and the frames of generated code are left out: they point
// into nothing the user wrote.
func scriptPlace(stack string) string {
	for _, m := range stackFrame.FindAllStringSubmatch(stack, -1) {
		file := m[1]
		if file == "<eval>" || strings.HasPrefix(file, "<") {
			continue
		}
		line, _ := strconv.Atoi(m[2])
		col, _ := strconv.Atoi(m[3])
		if file == FunctionsName {
			return fmt.Sprintf("functions line %d col %d", line, col)
		}
		// A snippet is compiled with one "(" before its first line.
		if line == 1 {
			col = max(col-1, 1)
		}
		return fmt.Sprintf("line %d col %d", line, col)
	}
	return ""
}
