package js

import (
	"encoding/json"

	"github.com/dop251/goja"
)

// project exports the fields of ChainSpec.Project of an object result
// (other results whole). The Projected values come from slabs allocated
// per batch, never reused.
func (c *Chain) project(v goja.Value) any {
	o, ok := v.(*goja.Object)
	if !ok || o.ClassName() != "Object" {
		return exportValue(v)
	}
	p := c.newProjected()
	for i, f := range p.Names {
		if x := o.Get(f); x != nil {
			p.Values[i] = exportValue(x)
		}
	}
	return p
}

// newProjected takes a Projected with the spec's names and no values from
// the slabs, allocated per batch and never reused.
func (c *Chain) newProjected() *Projected {
	n := len(c.spec.Project)
	if len(c.projs) == 0 {
		c.projs = make([]Projected, max(len(c.batch.Records), 16))
	}
	if len(c.projVals) < n {
		c.projVals = make([]any, max(len(c.batch.Records), 16)*n)
	}
	p := &c.projs[0]
	c.projs = c.projs[1:]
	p.Names, p.Values = c.spec.Project, c.projVals[:n:n]
	c.projVals = c.projVals[n:]
	return p
}

// Projected is a chain output exported with only some fields (see
// ChainSpec.Project): Values[i] is the value of field Names[i], nil if
// the output has none.
type Projected struct {
	Names  []string
	Values []any
}

// Get returns the value of field name (nil if absent or not projected).
func (p *Projected) Get(name string) any {
	for i, n := range p.Names {
		if n == name {
			return p.Values[i]
		}
	}
	return nil
}

// MarshalJSON encodes the fields as a JSON object.
func (p *Projected) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(p.Names))
	for i, n := range p.Names {
		if p.Values[i] != nil {
			m[n] = p.Values[i]
		}
	}
	return json.Marshal(m)
}
