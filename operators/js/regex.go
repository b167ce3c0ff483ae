package js

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/dlclark/regexp2/v2"
	"github.com/dop251/goja"
	"github.com/dop251/goja/parser"
)

// RegexBudget is the time one regular-expression call (test, exec, one
// step of a matchAll, or the match, replace, search and split of a
// string) may run; one that runs longer fails its record with ErrRegex.
//
// goja runs patterns Go's regexp cannot (backreferences, lookarounds), and
// patterns at an offset, with regexp2, which backtracks: /(?=a)(a+)+b/ on
// 26 a's runs for tens of seconds in one native step that no interrupt
// reaches. regexp2 stops a match at its MatchTimeout, which goja reports
// as no match; the sandbox sets that timeout to regexTimeout and fails
// every call that ran RegexBudget or longer, so no script sees the wrong
// answer. The timeout is twice the budget because regexp2 reads a clock
// that a goroutine advances every regexClockPeriod: when that goroutine
// was starved, a deadline comes early.
//
// regexp2's timeout is process-wide (set once, at package init, for every
// pattern compiled after), so it cannot follow each operator's Budget: a
// backtracking match can run past a call's budget by up to regexTimeout
// plus regexClockPeriod.
const RegexBudget = 25 * time.Millisecond

const regexTimeout = 2 * RegexBudget

// regexClockPeriod is how often regexp2's clock ticks (its default is
// 100ms, which would add that to the bound above).
const regexClockPeriod = 5 * time.Millisecond

// ErrRegex is the cause of a record that failed because a regular
// expression ran past RegexBudget.
var ErrRegex = errors.New("js: regular expression exceeded its time budget")

func init() {
	regexp2.DefaultMatchTimeout = regexTimeout
	regexp2.SetTimeoutCheckPeriod(regexClockPeriod)
}

// regexErr is the error of a regular-expression call on pattern src
// (empty when unknown: the matchAll iterator) that ran for took.
func regexErr(what, src string, took time.Duration) error {
	if len(src) > 80 {
		src = src[:80] + "…"
	}
	if src != "" {
		what += " /" + src + "/"
	}
	return fmt.Errorf("%w of %v: %s ran %v (backtracking; rewrite the pattern without nested quantifiers or backreferences)",
		ErrRegex, RegexBudget, what, took.Round(time.Millisecond))
}

// guardRegex wraps the RegExp methods that run a match so that one that
// ran for RegexBudget or longer — as any that regexp2's timeout stopped
// did, reported by goja as no match — interrupts the call with ErrRegex.
// The symbol-keyed methods, test, and the matchAll iterator's next are
// wrapped in place, which keeps goja's fast paths for plain RegExps.
// exec is guarded only when the job's source names it: replacing it turns
// those fast paths off for every RegExp of the runtime (string replace
// and split then run several times slower). Code that calls exec by a
// computed name can see a timed-out exec as null; the time it can take is
// bounded all the same.
func (vm *VM) guardRegex(source string) error {
	rt := vm.rt
	proto := rt.Get("RegExp").ToObject(rt).Get("prototype").ToObject(rt)
	sym := func(name string) *goja.Symbol {
		switch name {
		case "match":
			return goja.SymMatch
		case "replace":
			return goja.SymReplace
		case "search":
			return goja.SymSearch
		}
		return goja.SymSplit
	}
	var errs []error
	// Symbol.matchAll only makes the iterator; its next matches.
	for _, name := range []string{"match", "replace", "search", "split"} {
		s := sym(name)
		orig, ok := goja.AssertFunction(proto.GetSymbol(s))
		if !ok {
			errs = append(errs, fmt.Errorf("RegExp.prototype[Symbol.%s] is not a function", name))
			continue
		}
		f := vm.timedRegex(name, orig)
		errs = append(errs, proto.DefineDataPropertySymbol(s, rt.ToValue(f), goja.FLAG_TRUE, goja.FLAG_FALSE, goja.FLAG_TRUE))
	}
	methods := []string{"test"}
	if strings.Contains(source, "exec") {
		methods = append(methods, "exec")
	}
	for _, name := range methods {
		orig, ok := goja.AssertFunction(proto.Get(name))
		if !ok {
			errs = append(errs, fmt.Errorf("RegExp.prototype.%s is not a function", name))
			continue
		}
		errs = append(errs, proto.DefineDataProperty(name, rt.ToValue(vm.timedRegex(name, orig)), goja.FLAG_TRUE, goja.FLAG_FALSE, goja.FLAG_TRUE))
	}
	// matchAll returns an iterator whose next runs exec's matching.
	iter, err := rt.RunString(`Object.getPrototypeOf(/x/[Symbol.matchAll](""))`)
	if err != nil {
		errs = append(errs, err)
	} else {
		ip := iter.ToObject(rt)
		if orig, ok := goja.AssertFunction(ip.Get("next")); ok {
			errs = append(errs, ip.DefineDataProperty("next", rt.ToValue(vm.timedRegex("matchAll", orig)), goja.FLAG_TRUE, goja.FLAG_FALSE, goja.FLAG_TRUE))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("js: sandbox: %w", err)
	}
	return nil
}

// timedRegex wraps orig, a RegExp method, so that a call of it that may
// have run regexp2 and ran for RegexBudget or longer interrupts the VM
// with ErrRegex before the script can use its result. A pattern that Go's
// regexp runs (linear in its input, no timeout) is not blamed when it
// runs from the start of the string, as match, replace, search and split
// of a plain RegExp do. With a replacement function, the longest stretch
// between its calls is measured: each is one match, and the function's
// own time counts against the call's Budget only.
func (vm *VM) timedRegex(name string, orig goja.Callable) func(goja.FunctionCall) goja.Value {
	return func(call goja.FunctionCall) goja.Value {
		if !vm.mayBacktrack(name, call.This) {
			v, err := orig(call.This, call.Arguments...)
			if err != nil {
				panic(err)
			}
			return v
		}
		began := time.Now()
		last, longest := began, time.Duration(0)
		args := call.Arguments
		if name == "replace" && len(args) > 1 {
			if fn, ok := goja.AssertFunction(args[1]); ok {
				args = append([]goja.Value{args[0], vm.rt.ToValue(func(c goja.FunctionCall) goja.Value {
					longest = max(longest, time.Since(last))
					v, err := fn(c.This, c.Arguments...)
					last = time.Now()
					if err != nil {
						panic(err)
					}
					return v
				})}, args[2:]...)
			}
		}
		v, err := orig(call.This, args...)
		if took := max(longest, time.Since(last)); took >= RegexBudget {
			vm.regexFailed = regexErr(name, patternSource(call.This), took)
			vm.rt.Interrupt(vm.regexFailed)
			return goja.Undefined()
		}
		if err != nil {
			panic(err)
		}
		return v
	}
}

// mayBacktrack reports whether the RegExp method name called on this may
// run regexp2: the pattern is one Go's regexp cannot run, or the match
// starts at lastIndex past the start (exec and test of a global or sticky
// RegExp, each step of a matchAll).
func (vm *VM) mayBacktrack(name string, this goja.Value) bool {
	o, ok := this.(*goja.Object)
	if !ok || name == "matchAll" {
		return true
	}
	src := patternSource(this)
	needs, known := vm.regexp2Patterns[src]
	if !known {
		needs = true
		if re2, err := parser.TransformRegExp(src, false, false); err == nil {
			_, cerr := regexp.Compile(re2)
			needs = cerr != nil
		}
		if vm.regexp2Patterns == nil {
			vm.regexp2Patterns = map[string]bool{}
		}
		if len(vm.regexp2Patterns) < maxPatternCache {
			vm.regexp2Patterns[src] = needs
		}
	}
	if needs {
		return true
	}
	if name != "exec" && name != "test" {
		return false
	}
	flags := o.Get("flags")
	at := o.Get("lastIndex")
	return flags != nil && strings.ContainsAny(flags.String(), "gy") && at != nil && at.ToFloat() != 0
}

// maxPatternCache bounds the patterns a VM remembers the engine of.
const maxPatternCache = 1024

// patternSource is the source of a RegExp, "" for other values.
func patternSource(v goja.Value) string {
	if o, ok := v.(*goja.Object); ok {
		if s := o.Get("source"); s != nil {
			return s.String()
		}
	}
	return ""
}
