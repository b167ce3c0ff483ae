package sinks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// ColumnType is the type of a result column.
type ColumnType string

// Column types. Timestamps are epoch milliseconds in JSON and
// timestamp[ms, UTC] in Arrow; JSON columns hold any value as its JSON
// text (a string column in Arrow); Struct columns hold an object with the
// column's Fields (an Arrow struct, a JSON object).
const (
	Timestamp ColumnType = "timestamp"
	Int64     ColumnType = "int64"
	Float64   ColumnType = "float64"
	String    ColumnType = "string"
	Bool      ColumnType = "bool"
	JSON      ColumnType = "json"
	Struct    ColumnType = "struct"
)

// Column is one named, typed result column. Fields are the fields of a
// Struct column, in order; other types have none.
type Column struct {
	Name   string
	Type   ColumnType
	Fields []Column `json:",omitempty"`
}

// ColumnsEqual reports whether a and b are the same columns: names, types
// and struct fields, in order.
func ColumnsEqual(a, b []Column) bool {
	return slices.EqualFunc(a, b, func(x, y Column) bool {
		return x.Name == y.Name && x.Type == y.Type && ColumnsEqual(x.Fields, y.Fields)
	})
}

// String shows a column as name:type, a struct's fields in braces.
func (c Column) String() string {
	if c.Type != Struct {
		return c.Name + ":" + string(c.Type)
	}
	parts := make([]string, len(c.Fields))
	for i, f := range c.Fields {
		parts[i] = f.String()
	}
	return c.Name + ":struct{" + strings.Join(parts, ", ") + "}"
}

// Window result columns that lead every window row.
const (
	ColWindowStart = "window_start"
	ColWindowEnd   = "window_end"
	ColKey         = "key"
)

// WindowColumns returns the leading window columns followed by aggs: the
// schema of a window's results.
func WindowColumns(aggs ...Column) []Column {
	return append([]Column{{Name: ColWindowStart, Type: Timestamp}, {Name: ColWindowEnd, Type: Timestamp}, {Name: ColKey, Type: String}}, aggs...)
}

func validateColumns(cols []Column) error { return checkColumns(cols, "") }

// checkColumns validates cols, the fields of struct column prefix when
// prefix is not empty.
func checkColumns(cols []Column, prefix string) error {
	seen := map[string]bool{}
	for _, c := range cols {
		name := prefix + c.Name
		if c.Name == "" || seen[c.Name] {
			return configErr("column %q is empty or repeated", name)
		}
		seen[c.Name] = true
		switch c.Type {
		case Timestamp, Int64, Float64, String, Bool, JSON:
			if len(c.Fields) > 0 {
				return configErr("column %s: a %s column has no fields", name, c.Type)
			}
		case Struct:
			if len(c.Fields) == 0 {
				return configErr("column %s: a struct column needs fields", name)
			}
			if err := checkColumns(c.Fields, name+"."); err != nil {
				return err
			}
		default:
			return configErr("column %s: unknown type %q", name, c.Type)
		}
	}
	return nil
}

// InferColumns derives columns from rows (see the package comment for the
// rules). Rows whose Value is not an object are one JSON column "value".
func InferColumns(rows []Row) []Column {
	types := map[string]ColumnType{}
	var names []string
	for _, r := range rows {
		m, ok := r.Value.(map[string]any)
		if !ok {
			return []Column{{Name: "value", Type: JSON}}
		}
		for k, v := range m {
			if _, seen := types[k]; !seen {
				names = append(names, k)
				types[k] = ""
			}
			if types[k] == "" && v != nil {
				types[k] = typeOf(v)
			}
		}
	}
	sort.Strings(names)
	var cols []Column
	lead := []string{ColWindowStart, ColWindowEnd, ColKey}
	for _, name := range lead {
		if _, ok := types[name]; ok {
			t := Timestamp
			if name == ColKey {
				t = String
			}
			cols = append(cols, Column{Name: name, Type: t})
		}
	}
	for _, name := range names {
		if slices.Contains(lead, name) {
			continue
		}
		t := types[name]
		if t == "" {
			t = JSON
		}
		cols = append(cols, Column{Name: name, Type: t})
	}
	return cols
}

func typeOf(v any) ColumnType {
	switch v.(type) {
	case float64, float32:
		return Float64
	case int64, int, int32, uint32:
		return Int64
	case string:
		return String
	case bool:
		return Bool
	}
	return JSON
}

// arrowSchema maps columns to an Arrow schema; every column is nullable.
func arrowSchema(cols []Column) *arrow.Schema {
	return arrow.NewSchema(arrowFields(cols), nil)
}

func arrowFields(cols []Column) []arrow.Field {
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		var t arrow.DataType
		switch c.Type {
		case Timestamp:
			t = arrow.FixedWidthTypes.Timestamp_ms
		case Int64:
			t = arrow.PrimitiveTypes.Int64
		case Float64:
			t = arrow.PrimitiveTypes.Float64
		case Bool:
			t = arrow.FixedWidthTypes.Boolean
		case Struct:
			t = arrow.StructOf(arrowFields(c.Fields)...)
		default:
			t = arrow.BinaryTypes.String
		}
		fields[i] = arrow.Field{Name: c.Name, Type: t, Nullable: true}
	}
	return fields
}

// toRecordBatch builds one Arrow record batch from rows. A value that does
// not fit its column's type becomes null.
func toRecordBatch(mem memory.Allocator, schema *arrow.Schema, cols []Column, rows []Row) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	b.Reserve(len(rows))
	for _, r := range rows {
		m, isMap := r.Value.(map[string]any)
		for i, c := range cols {
			var v any
			if isMap {
				v = m[c.Name]
			} else if c.Name == "value" {
				v = r.Value
			}
			appendValue(b.Field(i), c, v)
		}
	}
	return b.NewRecordBatch()
}

func appendValue(fb array.Builder, c Column, v any) {
	if v == nil {
		fb.AppendNull()
		return
	}
	switch c.Type {
	case Struct:
		m, ok := structValue(v)
		if !ok {
			break
		}
		sb := fb.(*array.StructBuilder)
		sb.Append(true)
		for i, f := range c.Fields {
			appendValue(sb.FieldBuilder(i), f, m[f.Name])
		}
		return
	case Timestamp:
		if ms, ok := asInt(v); ok {
			fb.(*array.TimestampBuilder).Append(arrow.Timestamp(ms))
			return
		}
	case Int64:
		if n, ok := asInt(v); ok {
			fb.(*array.Int64Builder).Append(n)
			return
		}
	case Float64:
		if f, ok := asFloat(v); ok {
			fb.(*array.Float64Builder).Append(f)
			return
		}
	case Bool:
		if x, ok := v.(bool); ok {
			fb.(*array.BooleanBuilder).Append(x)
			return
		}
	case String:
		if s, ok := v.(string); ok {
			fb.(*array.StringBuilder).Append(s)
			return
		}
		fb.(*array.StringBuilder).Append(jsonText(v))
		return
	case JSON:
		fb.(*array.StringBuilder).Append(jsonText(v))
		return
	}
	fb.AppendNull()
}

// structValue reads v as the object of a struct column: an object, or
// the JSON text of one (how a JSON column held it before the column
// became a struct).
func structValue(v any) (map[string]any, bool) {
	switch x := v.(type) {
	case map[string]any:
		return x, true
	case string:
		var m map[string]any
		if json.Unmarshal([]byte(x), &m) == nil && m != nil {
			return m, true
		}
	}
	return nil, false
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int:
		return int64(x), true
	case int32:
		return int64(x), true
	case float64:
		if x == math.Trunc(x) && !math.IsInf(x, 0) && math.Abs(x) < 1<<62 {
			return int64(x), true
		}
	case json.Number:
		n, err := x.Int64()
		return n, err == nil
	case time.Time:
		return x.UnixMilli(), true
	}
	return 0, false
}

func asFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int64:
		return float64(x), true
	case int:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}

// RowsOf turns a record batch back into JSON rows: one map per row with
// timestamps as epoch milliseconds and nulls as nil. It is what the
// results API serves for format=json.
func RowsOf(rec arrow.RecordBatch) []map[string]any {
	n := int(rec.NumRows())
	rows := make([]map[string]any, n)
	for i := range rows {
		rows[i] = make(map[string]any, int(rec.NumCols()))
	}
	for c := 0; c < int(rec.NumCols()); c++ {
		name := rec.ColumnName(c)
		col := rec.Column(c)
		for i := 0; i < n; i++ {
			rows[i][name] = valueAt(col, i)
		}
	}
	return rows
}

// valueAt is element i of col in JSON form: a struct as an object of its
// fields.
func valueAt(col arrow.Array, i int) any {
	if col.IsNull(i) {
		return nil
	}
	switch a := col.(type) {
	case *array.Timestamp:
		return int64(a.Value(i))
	case *array.Int64:
		return a.Value(i)
	case *array.Float64:
		return a.Value(i)
	case *array.Boolean:
		return a.Value(i)
	case *array.String:
		return a.Value(i)
	case *array.Struct:
		st := a.DataType().(*arrow.StructType)
		m := make(map[string]any, a.NumField())
		for f := 0; f < a.NumField(); f++ {
			m[st.Field(f).Name] = valueAt(a.Field(f), i)
		}
		return m
	}
	return col.ValueStr(i)
}

// appendJSONRow writes value as one JSON object with the columns' names
// first, in order, then any other fields alphabetically (for objects; other
// values are written as they are).
func appendJSONRow(buf *bytes.Buffer, v any, cols []Column) error {
	m, ok := v.(map[string]any)
	if !ok {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		buf.Write(b)
		return nil
	}
	order := make([]string, 0, len(m))
	seen := make(map[string]bool, len(cols))
	for _, c := range cols {
		if _, ok := m[c.Name]; ok {
			order = append(order, c.Name)
			seen[c.Name] = true
		}
	}
	rest := make([]string, 0, len(m))
	for k := range m {
		if !seen[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	order = append(order, rest...)
	buf.WriteByte('{')
	for i, k := range order {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString(strconv.Quote(k))
		buf.WriteByte(':')
		b, err := json.Marshal(m[k])
		if err != nil {
			return fmt.Errorf("field %s: %w", k, err)
		}
		buf.Write(b)
	}
	buf.WriteByte('}')
	return nil
}
