package jobs

import (
	"go/ast"
	goparser "go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every kind is declared in a file of its own, kind_<name>.go, by one
// register call: the file pattern that makes a kind one declaration.
func TestKindsDeclaredInTheirFiles(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := goparser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		calls := 0
		ast.Inspect(f, func(n ast.Node) bool {
			c, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			if id, ok := c.Fun.(*ast.Ident); ok && strings.HasPrefix(id.Name, "register") && id.Name != "register" {
				switch id.Name {
				case "registerSource", "registerOperator", "registerSink":
					calls++
					if !strings.HasPrefix(name, "kind_") {
						t.Errorf("%s: %s called outside a kind_<name>.go file", fset.Position(c.Pos()), id.Name)
					}
				}
			}
			return true
		})
		switch {
		case strings.HasPrefix(name, "kind_") && calls != 1:
			t.Errorf("%s declares %d kinds; a kind file declares exactly one", name, calls)
		}
	}
}

// Every registered kind has its rows in the generated reference of
// docs/jobs.md and is named in its prose; a connector kind is also named
// in docs/connectors.md. (The web UI's editor has no completion list to
// check: it highlights YAML and JS only.)
func TestEveryKindDocumented(t *testing.T) {
	jobsDoc, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatal(err)
	}
	connDoc, err := os.ReadFile("../docs/connectors.md")
	if err != nil {
		t.Fatal(err)
	}
	check := func(where string, name string, fs []Field, connector bool) {
		for _, f := range kindFields(where+name, fs) {
			if !strings.Contains(string(jobsDoc), "| `"+f.Path+"` |") {
				t.Errorf("docs/jobs.md has no reference row for %s", f.Path)
			}
		}
		if !strings.Contains(string(jobsDoc), name+":") {
			t.Errorf("docs/jobs.md never writes %s: outside the reference", name)
		}
		if connector && !strings.Contains(string(connDoc), name+":") {
			t.Errorf("docs/connectors.md never writes %s:, yet it is a connector kind", name)
		}
	}
	for _, k := range sourceKinds() {
		check("source.", k.Name, k.Fields, k.Connector)
	}
	for _, k := range operatorKinds() {
		check("operators[].", k.Name, k.Fields, false)
	}
	for _, k := range sinkKinds() {
		check("sinks[].", k.Name, k.Fields, k.Connector)
	}
}

// A kind's declaration is complete: what parsing, validating and building
// need is there.
func TestKindsComplete(t *testing.T) {
	for _, k := range sourceKinds() {
		if k.Has == nil || k.Parse == nil || k.Build == nil || len(k.Fields) == 0 || k.Fields[0].Path != "" {
			t.Errorf("source kind %s lacks Has, Parse, Build or its own field row", k.Name)
		}
		if k.Formats == nil && k.NoFormat == "" {
			t.Errorf("source kind %s has neither Formats nor NoFormat", k.Name)
		}
	}
	for _, k := range operatorKinds() {
		if k.Has == nil || k.Parse == nil || (k.Build == nil) == (k.Stage == nil) || len(k.Fields) == 0 || k.Fields[0].Path != "" {
			t.Errorf("operator kind %s lacks Has, Parse, exactly one of Build and Stage, or its own field row", k.Name)
		}
	}
	for _, k := range sinkKinds() {
		if k.Has == nil || k.Parse == nil || k.Build == nil || len(k.Fields) == 0 || k.Fields[0].Path != "" {
			t.Errorf("sink kind %s lacks Has, Parse, Build or its own field row", k.Name)
		}
	}
}
