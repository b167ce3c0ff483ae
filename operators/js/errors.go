package js

import (
	"errors"
	"fmt"
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
	// Stack is the JS stack if the exception was an Error object.
	Stack string
}

func (e *ExceptionError) Error() string {
	if e.Stack != "" {
		return e.Message + " (" + e.Stack + ")"
	}
	return e.Message
}
