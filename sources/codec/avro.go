package codec

import (
	"fmt"
	"math/big"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/runnel-dev/runnel/sources"
)

type avroDecoder struct {
	c    *Codec
	byID map[uint32]avro.Schema // this decoder's view of the registry cache
}

func (d *avroDecoder) Decode(data []byte) (any, error) {
	schema := d.c.avro
	if d.c.reg != nil {
		id, payload, err := splitWire(data)
		if err != nil {
			return nil, err
		}
		s, ok := d.byID[id]
		if !ok {
			if s, err = d.c.reg.avroSchema(id); err != nil {
				return nil, err
			}
			d.byID[id] = s
		}
		schema, data = s, payload
	}
	var v any
	if err := avro.Unmarshal(schema, data, &v); err != nil {
		return nil, fmt.Errorf("avro: %w", err)
	}
	return avroValue(schema, v), nil
}

// avroValue turns what hamba/avro decodes into an `any` into the values
// of the JSON decoder, walking the schema: unions lose their type-name
// wrapper, numbers become float64, bytes sources.Bytes, times epoch
// milliseconds.
func avroValue(s avro.Schema, v any) any {
	if v == nil {
		return nil
	}
	if r, ok := s.(*avro.RefSchema); ok {
		s = r.Schema() // a named type used again, from this schema or a referenced one
	}
	switch s := s.(type) {
	case *avro.RecordSchema:
		m, ok := v.(map[string]any)
		if !ok {
			return v
		}
		for _, f := range s.Fields() {
			if fv, ok := m[f.Name()]; ok {
				m[f.Name()] = avroValue(f.Type(), fv)
			}
		}
		return m
	case *avro.UnionSchema:
		if m, ok := v.(map[string]any); ok && len(m) == 1 {
			for name, inner := range m {
				for _, t := range s.Types() {
					if unionName(t) == name {
						return avroValue(t, inner)
					}
				}
			}
		}
		for _, t := range s.Types() {
			if t.Type() != avro.Null {
				return avroValue(t, v)
			}
		}
		return v
	case *avro.ArraySchema:
		if a, ok := v.([]any); ok {
			for i := range a {
				a[i] = avroValue(s.Items(), a[i])
			}
		}
		return v
	case *avro.MapSchema:
		if m, ok := v.(map[string]any); ok {
			for k := range m {
				m[k] = avroValue(s.Values(), m[k])
			}
		}
		return v
	}
	return avroScalar(v)
}

func unionName(s avro.Schema) string {
	if r, ok := s.(*avro.RefSchema); ok {
		s = r.Schema()
	}
	if n, ok := s.(avro.NamedSchema); ok {
		return n.FullName()
	}
	if l, ok := s.(avro.LogicalTypeSchema); ok && l.Logical() != nil {
		return string(s.Type()) + "." + string(l.Logical().Type())
	}
	return string(s.Type())
}

func avroScalar(v any) any {
	switch v := v.(type) {
	case int:
		return float64(v)
	case int32:
		return float64(v)
	case int64:
		return float64(v)
	case float32:
		return float64(v)
	case []byte:
		return sources.Bytes(v)
	case time.Time:
		return float64(v.UnixMilli())
	case time.Duration:
		return float64(v.Milliseconds())
	case *big.Rat:
		f, _ := v.Float64()
		return f
	case [16]byte:
		return sources.Bytes(v[:])
	}
	return v
}
