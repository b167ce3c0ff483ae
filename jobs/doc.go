// Package jobs owns Runnel's job files: parsing the YAML (or JSON) into a
// typed Spec, validating it with errors that name the line, the field and
// what is allowed, compiling every JS snippet at submit time, and resolving
// the operator graph (chain by default; input:/inputs: make fan-out and
// union). It also maps a Spec onto the runtime (Build) and runs jobs
// (Manager: submit, persist, restart, stop).
//
// The registry of kinds (kinds.go): every source, operator and sink kind
// is one declaration in one file, kind_<name>.go, registered from its
// init. The declaration holds the kind's fields (which the parser accepts
// and the reference lists), its parsing, validation, build function and
// checkpoint behaviour; the common code asks the registry and names no
// kind. docs/architecture.md shows how to add a kind.
//
// A parsed Spec is plain data: Parse returns a *Spec whose defaults are
// filled in and whose Operator.From / Sink.From say what each node reads;
// Graph gives the topological order. The spec*.go files know nothing of the
// runtime; Build and the kinds' build functions are the places that do.
//
// JS snippets (map, filter, window key, event_time, custom aggregate parts,
// detect key) are single expressions that evaluate to a function; see
// WrapSnippet for exactly how they are compiled. The runtime compiles them
// with operators/js, which wraps them the same way (a test holds the two
// together); jobs is stricter about a snippet's shape and bounds its size
// and nesting, since parsing runs on the server at submit time.
//
// Errors: Parse and Validate return a *SpecError holding every Problem,
// each with the line, column and field path, a stable code (Codes), a
// message and a hint; Problem has JSON tags for the HTTP API.
//
// The job-file reference in docs/jobs.md is generated from Fields (the
// common keys and every kind's) by
// TestDocsReference (run it with -update to rewrite the table), and
// TestFieldsMatchStructs checks Fields against the yaml tags of the structs,
// so the format, the structs and the docs cannot drift apart.
package jobs
