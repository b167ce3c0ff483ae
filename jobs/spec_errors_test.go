package jobs

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// want is one expected problem: its line, field, code, and a piece of its
// rendered text.
type want struct {
	line  int
	field string
	code  string
	text  string
}

// head is a valid start of a job file: lines 1-2.
const head = "name: t\nsource: {stream: s}\n"

// Each case is a job file with exactly the listed problems, in order.
var errorCases = []struct {
	name string
	src  string
	want []want
}{
	// YAML and structure.
	{"not yaml", "name: x\nsource: [a\n", []want{{1, "", CodeYAML, "not valid YAML"}}},
	{"unquoted snippet with a colon", head + "operators:\n  - id: m\n    map: r => ({page: r.page})\nsinks: [{id: o, log: {}}]\n", []want{
		{5, "", CodeYAML, "quote JS snippets"},
	}},
	{"tab indentation", "name: t\nsource:\n\tstream: s\n", []want{
		{3, "", CodeYAML, "not tabs"},
	}},
	{"empty file", "# nothing\n", []want{{0, "", CodeMissing, "the job file is empty"}}},
	{"not a mapping", "- a\n- b\n", []want{{1, "", CodeType, "must be a mapping, not a list"}}},
	{"two documents", head + "sinks: [{id: o, log: {}}]\n---\nname: u\n", []want{{4, "", CodeYAML, "one YAML document"}}},
	{"unknown top-level field", "nmae: t\nsource: {stream: s}\nsinks: [{id: o, log: {}}]\n", []want{
		{0, "name", CodeMissing, "name: is required"},
		{1, "nmae", CodeUnknownField, `line 1: nmae: unknown field (did you mean "name"?)`},
	}},
	{"unknown nested field", head + "operators:\n  - id: w\n    window:\n      key: 'r => r.k'\n      tumblng: 10s\n      aggregate: {n: count}\nsinks: [{id: o, log: {}}]\n", []want{
		{5, "operators[0].window", CodeMissing, "needs one of tumbling, sliding or session"},
		{7, "operators[0].window.tumblng", CodeUnknownField, `did you mean "tumbling"?`},
	}},
	{"window state cache out of range", head + "operators:\n  - id: w\n    window: {key: 'r => r.k', tumbling: 1s, state_cache: 10, aggregate: {n: count}}\nsinks: [{id: o, log: {}}]\n", []want{
		{5, "operators[0].window.state_cache", CodeInvalid, "10 is out of range"},
	}},
	{"a field at the wrong level", head + "operators:\n  - id: w\n    tumbling: 10s\n    window: {key: 'r => 1', tumbling: 1s, aggregate: {n: count}}\nsinks: [{id: o, log: {}}]\n", []want{
		{5, "operators[0].tumbling", CodeUnknownField, "tumbling belongs under operators[].window"},
	}},
	{"a field two levels off", "name: t\nsource: {stream: s, name: clicks}\nsinks: [{id: o, log: {}}]\n", []want{
		{2, "source.name", CodeUnknownField, "name belongs at the top level"},
	}},
	{"unknown field, nothing close", head + "sinks: [{id: o, log: {}, colour: red}]\n", []want{
		{3, "sinks[0].colour", CodeUnknownField, "allowed: id, input, late, dashboard, stream, file, log"},
	}},
	{"duplicate key", "name: t\nname: u\nsource: {stream: s}\nsinks: [{id: o, log: {}}]\n", []want{
		{2, "name", CodeDuplicateKey, "appears twice (first on line 1)"},
	}},
	{"list where a mapping belongs", head + "operators: {id: a}\nsinks: [{id: o, log: {}}]\n", []want{
		{3, "operators", CodeType, "must be a list, not a mapping"},
	}},
	{"merge keys", head + "sinks:\n  - &s {id: o, log: {}}\n  - {<<: *s, id: p}\n", []want{
		{5, "sinks[1].<<", CodeUnknownField, "merge keys"},
		{5, "sinks[1]", CodeMissing, "needs one of dashboard, stream, file or log"},
	}},

	// Values.
	{"bad job name", "name: Page_Views\nsource: {stream: s}\nsinks: [{id: o, log: {}}]\n", []want{
		{1, "name", CodeInvalid, `"Page_Views" is not a valid job name`},
	}},
	{"empty value", "name:\nsource: {stream: s}\nsinks: [{id: o, log: {}}]\n", []want{
		{1, "name", CodeInvalid, "is empty"},
	}},
	{"bad duration", head + "operators:\n  - id: a\n    map: 'r => r'\n  - id: b\n    map: 'r => r'\n  - id: w\n    window:\n      key: 'r => r.k'\n      tumbling: 10x\n      aggregate: {n: count}\nsinks: [{id: o, log: {}}]\n", []want{
		{11, "operators[2].window.tumbling", CodeInvalid, `line 11: operators[2].window.tumbling: "10x" is not a duration (e.g. 10s, 1m)`},
	}},
	{"duration without unit", head + "operators:\n  - {id: w, window: {key: 'r => 1', tumbling: 10, aggregate: {n: count}}}\nsinks: [{id: o, log: {}}]\n", []want{
		{4, "operators[0].window.tumbling", CodeInvalid, `"10" has no unit`},
	}},
	{"negative and sub-millisecond durations", "name: t\nsource: {stream: s, watermark: -5s}\noperators:\n  - {id: w, window: {key: 'r => 1', session: {gap: 1500us}, aggregate: {n: count}}}\nsinks: [{id: o, log: {}}]\n", []want{
		{2, "source.watermark", CodeInvalid, `"-5s" is negative`},
		{4, "operators[0].window.session.gap", CodeInvalid, "not a whole number of milliseconds"},
	}},
	{"zero where zero is not allowed", "name: t\nsource: {stream: s, shards: 0}\ncheckpoint: {every: 0s}\nsinks: [{id: o, log: {}}]\n", []want{
		{2, "source.shards", CodeInvalid, "must be at least 1"},
		{3, "checkpoint.every", CodeInvalid, "must be greater than 0"},
	}},
	{"not an integer", "name: t\nsource: {stream: s, shards: four}\nsinks: [{id: o, log: {}}]\n", []want{
		{2, "source.shards", CodeType, `"four" is not an integer`},
	}},
	{"out of range", "name: t\nsource: {stream: s, shards: 5000}\noperators: [{id: m, map: 'r => r', timeout: 2m}]\ncheckpoint: {every: 10ms}\nsinks: [{id: o, dashboard: {rows: 2000000}}]\n", []want{
		{2, "source.shards", CodeInvalid, "5000 is out of range (1–1024)"},
		{3, "operators[0].timeout", CodeInvalid, "2m0s is out of range (1ms–1m)"},
		{4, "checkpoint.every", CodeInvalid, "10ms is too short"},
		{5, "sinks[0].dashboard.rows", CodeInvalid, "2000000 is out of range"},
	}},

	// Source.
	{"no source", "name: t\nsinks: [{id: o, log: {}}]\n", []want{
		{0, "source", CodeMissing, "needs one of stream, file or generator"},
	}},
	{"two sources", "name: t\nsource: {stream: s, file: a.csv}\nsinks: [{id: o, log: {}}]\n", []want{
		{2, "source.file", CodeConflict, "has stream and file"},
	}},
	{"bad start", "name: t\nsource:\n  stream: s\n  start: trim_horizn\nsinks: [{id: o, log: {}}]\n", []want{
		{4, "source.start", CodeInvalid, `"trim_horizn" is not a start position (did you mean "trim_horizon"?)`},
	}},
	{"bad at_timestamp", "name: t\nsource:\n  stream: s\n  start: {at_timestamp: yesterday}\nsinks: [{id: o, log: {}}]\n", []want{
		{4, "source.start.at_timestamp", CodeInvalid, `"yesterday" is not an RFC 3339 time`},
	}},
	{"start for a file", "name: t\nsource:\n  file: a.jsonl\n  start: latest\nsinks: [{id: o, log: {}}]\n", []want{
		{4, "source.start", CodeConflict, "stream sources only"},
	}},
	{"bad format", "name: t\nsource: {stream: s, format: jsn}\nsinks: [{id: o, log: {}}]\n", []want{
		{2, "source.format", CodeInvalid, `"jsn" is not a stream source format (did you mean "json"?)`},
	}},
	{"format for the generator", "name: t\nsource: {generator: {rate: max}, format: csv}\nsinks: [{id: o, log: {}}]\n", []want{
		{2, "source.format", CodeConflict, "format does not apply"},
	}},
	{"bad generator", "name: t\nsource:\n  generator: {rate: fast, shape: orders}\nsinks: [{id: o, log: {}}]\n", []want{
		{3, "source.generator.rate", CodeInvalid, `"fast" is not a rate`},
		{3, "source.generator.shape", CodeInvalid, `"orders" is not a generator shape`},
	}},

	// Operators.
	{"operator without a kind", head + "operators: [{id: a}]\nsinks: [{id: o, log: {}}]\n", []want{
		{3, "operators[0]", CodeMissing, "needs one of map, filter, window, detect"},
	}},
	{"operator with two kinds", head + "operators:\n  - id: a\n    map: 'r => r'\n    filter: 'r => true'\nsinks: [{id: o, log: {}}]\n", []want{
		{6, "operators[0].filter", CodeConflict, "has map and filter"},
	}},
	{"ids", head + "operators:\n  - {map: 'r => r'}\n  - {id: Bad, map: 'r => r'}\n  - {id: source, map: 'r => r'}\n  - {id: o, map: 'r => r'}\nsinks: [{id: o, log: {}}]\n", []want{
		{4, "operators[0].id", CodeMissing, "is required"},
		{5, "operators[1].id", CodeInvalid, `"Bad" is not a valid id`},
		{6, "operators[2].id", CodeInvalid, `"source" is reserved`},
		{8, "sinks[0].id", CodeDuplicateID, `"o" is already the id of operators[3].id`},
	}},
	{"input and inputs", head + "operators:\n  - {id: a, map: 'r => r'}\n  - {id: b, input: a, inputs: [a], map: 'r => r'}\nsinks: [{id: o, log: {}}]\n", []want{
		{5, "operators[1].inputs", CodeConflict, "use input or inputs, not both"},
	}},
	{"on_error", head + "operators:\n  - {id: a, map: 'r => r', on_error: retry}\n  - {id: b, map: 'r => r', on_error: dead_letter}\n  - {id: c, map: 'r => r', on_error: {dead_letter: 'no such'}}\nsinks: [{id: o, log: {}}]\n", []want{
		{4, "operators[0].on_error", CodeInvalid, `"retry" is not an error policy`},
		{5, "operators[1].on_error", CodeInvalid, "dead_letter needs a stream name"},
		{6, "operators[2].on_error.dead_letter", CodeInvalid, `"no such" is not a valid stream name`},
	}},

	// Windows.
	{"window without a key", head + "operators:\n  - id: w\n    window:\n      tumbling: 10s\n      aggregate: {n: count}\nsinks: [{id: o, log: {}}]\n", []want{
		{5, "operators[0].window.key", CodeMissing, "a window needs a key"},
	}},
	{"two window kinds", head + "operators:\n  - id: w\n    window:\n      key: 'r => r.k'\n      tumbling: 10s\n      session: {gap: 5s}\n      aggregate: {n: count}\nsinks: [{id: o, log: {}}]\n", []want{
		{8, "operators[0].window.session", CodeConflict, "has tumbling and session"},
	}},
	{"sliding every longer than size", head + "operators:\n  - id: w\n    window:\n      key: 'r => r.k'\n      sliding: {size: 10s, every: 1m}\n      aggregate: {n: count}\nsinks: [{id: o, log: {}}]\n", []want{
		{7, "operators[0].window.sliding.every", CodeInvalid, "1m0s is longer than size 10s"},
	}},
	{"sliding without every", head + "operators:\n  - id: w\n    window:\n      key: 'r => r.k'\n      sliding: {size: 10s}\n      aggregate: {n: count}\nsinks: [{id: o, log: {}}]\n", []want{
		{7, "operators[0].window.sliding.every", CodeMissing, "is required"},
	}},
	{"window without aggregates", head + "operators:\n  - id: w\n    window: {key: 'r => r.k', tumbling: 1s}\nsinks: [{id: o, log: {}}]\n", []want{
		{5, "operators[0].window.aggregate", CodeMissing, "at least one aggregate"},
	}},
	{"bad aggregates", head + "operators:\n  - id: w\n    window:\n      key: 'r => r.k'\n      tumbling: 1s\n      aggregate:\n        a: cnt\n        b: count(x)\n        c: sum\n        d: avg(1x)\n        1e: count\n        window_start: min(t)\n        f: p97(ms)\nsinks: [{id: o, log: {}}]\n", []want{
		{9, "operators[0].window.aggregate.a", CodeInvalid, `"cnt" is not an aggregate (did you mean "count"?)`},
		{10, "operators[0].window.aggregate.b", CodeInvalid, "count takes no field"},
		{11, "operators[0].window.aggregate.c", CodeInvalid, "sum needs a field (e.g. sum(latency_ms))"},
		{12, "operators[0].window.aggregate.d", CodeInvalid, `"1x" is not a field name`},
		{13, "operators[0].window.aggregate.1e", CodeInvalid, `"1e" is not a valid column name`},
		{14, "operators[0].window.aggregate.window_start", CodeInvalid, "clashes with a result column"},
		{15, "operators[0].window.aggregate.f", CodeInvalid, `did you mean "p95"?`},
	}},
	{"custom aggregate without merge", head + "operators:\n  - id: w\n    window:\n      key: 'r => r.k'\n      tumbling: 1s\n      aggregate:\n        top:\n          init: '() => 0'\n          add: '(a, r) => a + 1'\n          reduce: '(a, b) => a + b'\nsinks: [{id: o, log: {}}]\n", []want{
		{9, "operators[0].window.aggregate.top.merge", CodeMissing, "is required"},
		{12, "operators[0].window.aggregate.top.reduce", CodeUnknownField, "allowed: init, add, merge, result"},
	}},
	{"custom aggregate object without add", head + "operators:\n  - id: w\n    window:\n      key: 'r => r.k'\n      tumbling: 1s\n      aggregate:\n        top: '({init: () => 0, merge: (a, b) => a + b})'\nsinks: [{id: o, log: {}}]\n", []want{
		{9, "operators[0].window.aggregate.top", CodeJSSyntax, "has no add method"},
	}},

	{"custom aggregate type and object", head + "operators:\n  - id: w\n    window:\n      key: 'r => r.k'\n      tumbling: 1s\n      aggregate:\n        a: {object: '({init: () => 0, add: (a) => a, merge: (a) => a})', init: '() => 0'}\n        b: {init: '() => 0', add: '(a) => a', merge: '(a) => a', type: bool}\n        c: {object: '({init: () => 0, add: (a) => a})'}\nsinks: [{id: o, log: {}}]\n", []want{
		{9, "operators[0].window.aggregate.a.object", CodeConflict, "not both"},
		{10, "operators[0].window.aggregate.b.type", CodeInvalid, `"bool" is not a column type`},
		{11, "operators[0].window.aggregate.c.object", CodeJSSyntax, "has no merge method"},
	}},

	// Detect.
	{"detect", head + "operators:\n  - id: d\n    detect: {method: rfc, threshold: 1.5}\nsinks: [{id: o, log: {}}]\n", []want{
		{5, "operators[0].detect.value", CodeMissing, "detect needs the field(s) to score"},
		{5, "operators[0].detect.method", CodeInvalid, `"rfc" is not an anomaly detection method (did you mean "rcf"?)`},
		{5, "operators[0].detect.threshold", CodeInvalid, "1.5 is out of range"},
	}},

	// Sinks.
	{"no sinks", head + "operators: [{id: a, map: 'r => r'}]\n", []want{
		{0, "sinks", CodeMissing, "a job needs at least one sink"},
		{3, "operators[0]", CodeDangling, `the output of "a" goes nowhere`},
	}},
	{"sinks all commented out", head + "operators:\nsinks:\n  # - {id: o, log: {}}\n", []want{
		{4, "sinks", CodeMissing, "a job needs at least one sink"},
	}},
	{"sink problems", head + "operators:\n  - {id: w, window: {key: 'r => 1', tumbling: 1s, aggregate: {n: count}}}\nsinks:\n  - {id: a}\n  - {id: b, input: w, late: w, log: {}}\n  - {id: c, stream: {shards: 2}}\n  - {id: d, file: {path: x.csv, format: csv}}\n", []want{
		{6, "sinks[0]", CodeMissing, "needs one of dashboard, stream, file or log"},
		{7, "sinks[1].late", CodeConflict, "input or late, not both"},
		{8, "sinks[2].stream.name", CodeMissing, "is required"},
		{9, "sinks[3].file.format", CodeInvalid, `"csv" is not a file format`},
	}},
	{"log sink with options", head + "sinks: [{id: o, log: stdout}]\n", []want{
		{3, "sinks[0].log", CodeType, "must be a mapping"},
	}},

	// Graph.
	{"unknown input", head + "operators:\n  - {id: per-page, map: 'r => r'}\n  - {id: spikes, input: per-pag, map: 'r => r'}\nsinks: [{id: o, input: spikes, log: {}}, {id: p, input: per-page, log: {}}]\n", []want{
		{5, "operators[1].input", CodeUnknownID, `no operator has id "per-pag" (did you mean "per-page"?)`},
	}},
	{"input names a sink", head + "operators:\n  - {id: a, input: o, map: 'r => r'}\nsinks: [{id: o, input: a, log: {}}]\n", []want{
		{4, "operators[0].input", CodeUnknownID, `"o" is a sink`},
	}},
	{"cycle", head + "operators:\n  - {id: a, map: 'r => r'}\n  - {id: b, inputs: [a, d], map: 'r => r'}\n  - {id: c, map: 'r => r'}\n  - {id: d, map: 'r => r'}\n  - {id: e, input: d, map: 'r => r'}\nsinks: [{id: o, input: e, log: {}}, {id: p, input: a, log: {}}]\n", []want{
		{5, "operators[1]", CodeCycle, "operators form a cycle: b → c → d → b"},
		{8, "operators[4]", CodeUnreachable, `no path from the source reaches "e"`},
		{9, "sinks[0]", CodeUnreachable, `no path from the source reaches sink "o"`},
	}},
	{"operator reading itself", head + "operators:\n  - {id: a, input: a, map: 'r => r'}\nsinks: [{id: o, log: {}}]\n", []want{
		{4, "operators[0].input", CodeCycle, `operator "a" reads itself`},
	}},
	{"operator reading itself in a union", head + "operators:\n  - {id: a, map: 'r => r'}\n  - {id: b, inputs: [a, b], map: 'r => r'}\nsinks: [{id: o, log: {}}]\n", []want{
		{5, "operators[1].inputs[1]", CodeCycle, `operator "b" reads itself`},
	}},
	{"duplicate inputs", head + "operators:\n  - {id: a, map: 'r => r'}\n  - {id: b, inputs: [a, a], map: 'r => r'}\nsinks: [{id: o, log: {}}]\n", []want{
		{5, "operators[1].inputs[1]", CodeDuplicateID, `"a" is listed twice`},
	}},
	{"sink without an input in a DAG", head + "operators:\n  - {id: a, map: 'r => r'}\n  - {id: b, input: source, map: 'r => r'}\nsinks: [{id: o, log: {}}]\n", []want{
		{6, "sinks[0].input", CodeMissing, `the job ends in "a" or "b"`},
	}},
	{"late from a non-window", head + "operators:\n  - {id: m, map: 'r => r'}\nsinks: [{id: o, log: {}}, {id: l, late: m, log: {}}, {id: s, late: source, log: {}}]\n", []want{
		{5, "sinks[1].late", CodeInvalid, `"m" is a map operator; only window operators have late records`},
		{5, "sinks[2].late", CodeInvalid, `"source" is the source`},
	}},
	{"dangling operator", head + "operators:\n  - {id: a, map: 'r => r'}\n  - {id: b, input: source, map: 'r => r'}\nsinks: [{id: o, input: b, log: {}}]\n", []want{
		{4, "operators[0]", CodeDangling, `the output of "a" goes nowhere`},
	}},

	{"detect a column the window does not have", head + "operators:\n  - {id: w, window: {key: 'r => r.p', tumbling: 1s, aggregate: {views: count}}}\n  - {id: d, detect: {value: [view, key]}}\n  - {id: w2, window: {key: 'r => r.key', tumbling: 1m, aggregate: {m: max(views), x: sum(ms)}}, input: w}\nsinks: [{id: o, input: d, log: {}}, {id: p, input: w2, log: {}}]\n", []want{
		{5, "operators[1].detect.value[0]", CodeInvalid, `"view" is not a result column of "w" (did you mean "views"?)`},
		{6, "operators[2].window.aggregate.x", CodeInvalid, `"ms" is not a result column of "w"`},
	}},
	{"writing into the source stream", "name: t\nsource: {stream: clicks}\noperators: [{id: m, map: 'r => r', on_error: {dead_letter: clicks}}]\nsinks: [{id: o, stream: {name: clicks}}]\n", []want{
		{3, "operators[0].on_error.dead_letter", CodeInvalid, "is the job's source stream"},
		{4, "sinks[0].stream.name", CodeInvalid, "is the job's source stream"},
	}},

	// JS.
	{"JS syntax error, plain scalar", head + "operators:\n  - id: parse\n    map: \"r => ({page: r.page)\"\nsinks: [{id: o, log: {}}]\n", []want{
		{5, "operators[0].map", CodeJSSyntax, `operator "parse": JS syntax error at line 1, column 20 of the snippet: Unexpected token )`},
	}},
	{"JS syntax error, block scalar", head + "operators:\n  - id: a\n    filter: |\n      r => {\n        return r.x >\n      }\nsinks: [{id: o, log: {}}]\n", []want{
		{8, "operators[0].filter", CodeJSSyntax, "at line 3, column 1 of the snippet: Unexpected token }"},
	}},
	{"JS unbalanced", head + "operators:\n  - {id: a, map: 'r => r.x)'}\nsinks: [{id: o, log: {}}]\n", []want{
		{4, "operators[0].map", CodeJSSyntax, "at the end of the snippet"},
	}},
	{"JS literal instead of a function", head + "operators:\n  - {id: w, window: {key: '\"page\"', tumbling: 1s, aggregate: {n: count}}}\nsinks: [{id: o, log: {}}]\n", []want{
		{4, "operators[0].window.key", CodeJSSyntax, "must be a function"},
	}},
	{"JS two statements", head + "operators:\n  - {id: a, map: 'r => r); (1'}\nsinks: [{id: o, log: {}}]\n", []want{
		{4, "operators[0].map", CodeJSSyntax, "must be a single expression"},
	}},
	{"JS in functions and event_time", "name: t\nsource: {stream: s, event_time: 'r => r.ts +'}\nfunctions: |\n  function f(x) {\n    return x +* 1\n  }\nsinks: [{id: o, log: {}}]\n", []want{
		{2, "source.event_time", CodeJSSyntax, "JS syntax error at line 1"},
		{5, "functions", CodeJSSyntax, "JS syntax error at line 2, column 13"},
	}},
	{"JS field name where a function belongs", head + "operators:\n  - id: w\n    window: {tumbling: 5s, key: page, aggregate: {n: count}}\nsinks: [{id: o, log: {}}]\n", []want{
		{5, "operators[0].window.key", CodeJSError, `operator "w": JS evaluation failed: ReferenceError: page is not defined`},
	}},
	{"JS record access outside a function", head + "operators:\n  - {id: m, map: r.page}\nsinks: [{id: o, log: {}}]\n", []want{
		{4, "operators[0].map", CodeJSError, "r is not defined"},
	}},
	{"JS misspelt function from functions", head + "functions: |\n  function pageOf(r) { return r.page }\noperators:\n  - {id: m, filter: pagOf}\nsinks: [{id: o, log: {}}]\n", []want{
		{6, "operators[0].filter", CodeJSError, "pagOf is not defined"},
	}},
	{"JS snippet evaluating to no function", head + "operators:\n  - {id: m, map: \"(r => r)(1)\"}\nsinks: [{id: o, log: {}}]\n", []want{
		{4, "operators[0].map", CodeJSError, `operator "m": JS: expression must evaluate to a function, got a number`},
	}},
	{"JS functions block that throws", head + "functions: |\n  const x = null.y\noperators:\n  - {id: m, map: \"r => r\"}\nsinks: [{id: o, log: {}}]\n", []want{
		{3, "functions", CodeJSError, "JS evaluation failed: TypeError"},
	}},
	{"JS custom aggregate without its methods", head + "operators:\n  - id: w\n    window:\n      key: \"r => r.page\"\n      tumbling: 5s\n      aggregate:\n        c: {object: \"makeAgg()\", type: int64}\nsinks: [{id: o, log: {}}]\n", []want{
		{9, "operators[0].window.aggregate.c.object", CodeJSError, "makeAgg is not defined"},
	}},
	{"JS strict-mode compile error", head + "operators:\n  - {id: a, filter: \"function (r) { 'use strict'; with (r) { return x } }\"}\nsinks: [{id: o, log: {}}]\n", []want{
		{4, "operators[0].filter", CodeJSSyntax, "with statement"},
	}},
}

func TestParseErrors(t *testing.T) {
	seen := map[string]bool{}
	defer func() {
		for _, code := range Codes {
			if !seen[code] {
				t.Errorf("no case produces problem code %s", code)
			}
		}
	}()
	for _, c := range errorCases {
		for _, w := range c.want {
			seen[w.code] = true
		}
		t.Run(c.name, func(t *testing.T) {
			got := problemsOf(t, c.src)
			for i := 0; i < max(len(got), len(c.want)); i++ {
				switch {
				case i >= len(got):
					t.Errorf("missing problem %d: %+v", i, c.want[i])
				case i >= len(c.want):
					t.Errorf("unexpected problem %d: %s [%s]", i, got[i], got[i].Code)
				default:
					g, w := got[i], c.want[i]
					if g.Line != w.line || g.Field != w.field || g.Code != w.code || !strings.Contains(g.String(), w.text) {
						t.Errorf("problem %d:\n got line %d field %q code %s: %s\nwant line %d field %q code %s containing %q",
							i, g.Line, g.Field, g.Code, g, w.line, w.field, w.code, w.text)
					}
				}
			}
		})
	}
}

// A JS problem carries the operator and the position inside the snippet,
// and its file position points at the offending character.
func TestJSProblemPosition(t *testing.T) {
	cases := []struct {
		src              string
		line, col        int
		jsLine, jsColumn int
	}{
		// plain scalar: `map: r => r.a +` — the error is at the end.
		{head + "operators:\n  - id: a\n    map: r => (r.a +)\nsinks: [{id: o, log: {}}]\n", 5, 21, 1, 12},
		// quoted scalar: one more column for the quote.
		{head + "operators:\n  - id: a\n    map: 'r => (r.a +)'\nsinks: [{id: o, log: {}}]\n", 5, 22, 1, 12},
		// literal block: file line = header line + snippet line.
		{head + "operators:\n  - id: a\n    map: |\n      r => {\n        let x = r.a +;\n        return x\n      }\nsinks: [{id: o, log: {}}]\n", 7, 22, 2, 16},
	}
	for i, c := range cases {
		ps := problemsOf(t, c.src)
		if len(ps) != 1 {
			t.Fatalf("case %d: %d problems: %v", i, len(ps), ps)
		}
		p := ps[0]
		if p.Operator != "a" || p.JSLine != c.jsLine || p.JSColumn != c.jsColumn || p.Line != c.line || p.Column != c.col {
			t.Errorf("case %d: got operator %q js %d:%d file %d:%d, want a js %d:%d file %d:%d (%s)",
				i, p.Operator, p.JSLine, p.JSColumn, p.Line, p.Column, c.jsLine, c.jsColumn, c.line, c.col, p)
		}
		lines := strings.Split(c.src, "\n")
		if ch := lines[p.Line-1][p.Column-1]; ch != ')' && ch != ';' {
			t.Errorf("case %d: file position %d:%d points at %q, want the offending token", i, p.Line, p.Column, ch)
		}
	}
}

// Error() renders one problem per line, whole-file problems without a line.
func TestSpecErrorText(t *testing.T) {
	_, err := Parse([]byte("nmae: t\nsinks: [{id: o, log: {}}]\n"))
	want := fmt.Sprint(
		"name: is required (e.g. name: page-views)\n",
		"source: needs one of stream, file or generator (e.g. source: {stream: clicks})\n",
		`line 1: nmae: unknown field (did you mean "name"?)`)
	if err == nil || err.Error() != want {
		t.Errorf("Error() =\n%v\nwant\n%s", err, want)
	}
}

// A few bytes of nested aliases ("billion laughs") are refused instead of
// walked.
func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("name: t\nsource: {stream: s}\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 9; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	b.WriteString("sinks: [{id: o, log: {}}]\n")
	ps := problemsOf(t, b.String())
	if len(ps) != 1 || !strings.Contains(ps[0].Message, "aliases") {
		t.Errorf("problems = %v, want one about aliases", ps)
	}
	// Ordinary anchors and aliases work.
	s := mustParse(t, "name: t\nsource: {stream: s}\noperators:\n  - {id: a, map: &f 'r => r'}\n  - {id: b, map: *f}\nsinks: [{id: o, log: {}}]\n")
	if s.Operators[1].Map != "r => r" {
		t.Errorf("alias resolved to %q", s.Operators[1].Map)
	}
}

// TestMisindentedKeyLine: a key indented to a column no enclosing mapping
// uses is reported at its own line, not where YAML's mapping began.
func TestMisindentedKeyLine(t *testing.T) {
	src := "name: pv\nsource:\n  stream: clicks\n  event_time: \"r => r.ts\"\noperators:\n  - id: per-page\n    window:\n      key: \"r => r.page\"\n      tumbling: 1m\n      aggregate:\n        views: count\n        total_ms: sum(ms)\n     p95_ms: p95(ms)\nsinks:\n  - {id: out, log: {}}\n"
	_, err := Parse([]byte(src))
	var se *SpecError
	if !errors.As(err, &se) || len(se.Problems) != 1 || se.Problems[0].Line != 13 || se.Problems[0].Code != CodeYAML {
		t.Fatalf("got %v, want one YAML problem at line 13", err)
	}
	if strings.Count(err.Error(), "line 13") != 1 {
		t.Fatalf("message repeats its line: %v", err)
	}
	// A block scalar's lines are not keys.
	ok := "name: pv\nsource: {stream: clicks}\nfunctions: |\n   function f(r) {\n       return r\n   }\noperators:\n  - id: m\n    map: \"r => f(r)\"\nsinks:\n  - {id: out, log: {}}\n"
	if l := misindented([]byte(ok), 1); l != 0 {
		t.Fatalf("a valid file: misindented line %d", l)
	}
}
