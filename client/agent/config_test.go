package agent

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestConfigKeysDocumented: every YAML key of the configuration is in
// docs/clients.md's table, so the docs cannot drift from the code.
func TestConfigKeysDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/clients.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []reflect.Type{reflect.TypeOf(Config{}), reflect.TypeOf(Flow{}), reflect.TypeOf(KinesisTarget{})} {
		for i := 0; i < typ.NumField(); i++ {
			tag := strings.Split(typ.Field(i).Tag.Get("yaml"), ",")[0]
			if tag == "" || tag == "-" {
				continue
			}
			if !strings.Contains(string(doc), tag+"`") && !strings.Contains(string(doc), "`"+tag+"[]") {
				t.Errorf("config key %s (%s.%s) is not in docs/clients.md", tag, typ.Name(), typ.Field(i).Name)
			}
		}
	}
}

// TestLoadErrors: bad configurations are refused with the key named.
func TestLoadErrors(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"flows: [{files: x, stream: s}]", "give server"},
		{"server: http://h\nflows: []", "flows: at least one"},
		{"server: http://h\nflows: [{files: x}]", "flows[0]: files and stream"},
		{"server: http://h\nflows: [{files: x, stream: s, format: xml}]", "flows[0].format"},
		{"server: http://h\nflows: [{files: x, stream: s, format: regex, pattern: 'a+'}]", "no named groups"},
		{"server: http://h\nflows: [{files: x, stream: s, multiline_start: '('}]", "multiline_start"},
		{"server: http://h\nscan_interval: often\nflows: [{files: x, stream: s}]", "not a duration"},
		{"server: http://h\nflow: []", "field flow not found"},
		{"server: http://h\nflows: [{files: x, stream: s, start_at: middle}]", "start_at"},
	} {
		p := filepath.Join(t.TempDir(), "a.yaml")
		os.WriteFile(p, []byte(c.yaml), 0o644)
		_, err := Load(p)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one containing %q", c.yaml, err, c.want)
		}
	}
	p := filepath.Join(t.TempDir(), "ok.yaml")
	os.WriteFile(p, []byte("server: http://h\nflows: [{files: '/var/log/*.log', stream: s, format: json}]"), 0o644)
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Checkpoint != p+".checkpoints" || c.Flows[0].HostField != "host" {
		t.Fatalf("defaults not filled: %+v", c)
	}
}
