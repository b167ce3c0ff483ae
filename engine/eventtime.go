package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/operators/js"
)

// ParseEventTime reads an event time: a number of epoch milliseconds
// (float64, int64, int, json.Number or a decimal string) or an RFC 3339
// string.
func ParseEventTime(v any) (int64, error) {
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) || x > 1<<62 || x < -(1<<62) {
			return 0, fmt.Errorf("event time %v is not epoch milliseconds", x)
		}
		return int64(x), nil
	case int64:
		return x, nil
	case int:
		return int64(x), nil
	case json.Number:
		return ParseEventTime(string(x))
	case string:
		if n, err := strconv.ParseInt(x, 10, 64); err == nil {
			return n, nil
		}
		t, err := time.Parse(time.RFC3339Nano, x)
		if err != nil {
			return 0, fmt.Errorf("event time %q is neither epoch milliseconds nor RFC 3339", x)
		}
		return t.UnixMilli(), nil
	case time.Time:
		return x.UnixMilli(), nil
	case nil:
		return 0, fmt.Errorf("event time is missing (null)")
	}
	return 0, fmt.Errorf("event time of type %T is neither epoch milliseconds nor RFC 3339", v)
}

// FieldEventTime is a Go-native EventTimeFactory reading a top-level field
// of object records: decoded ones, and raw JSON ones (a stream source with
// RawJSON feeding a JS chain) without decoding the rest of the record. A
// record without the field, or with a value that is not a time, is an
// error naming the record.
func FieldEventTime(field string) EventTimeFactory {
	return func() (EventTimeFunc, error) {
		var fields js.JSONFields
		return func(ctx context.Context, recs []operators.Record) ([]operators.Record, error) {
			for i := range recs {
				var v any
				switch x := recs[i].Value.(type) {
				case map[string]any:
					v = x[field]
				case json.RawMessage:
					var err error
					if v, _, err = fields.Get(x, field); err != nil {
						return nil, fmt.Errorf("record %s: event time field %q: %w", recs[i].Origin, field, err)
					}
				default:
					return nil, fmt.Errorf("record %s is not an object, so it has no event time field %q", recs[i].Origin, field)
				}
				t, err := ParseEventTime(v)
				if err != nil {
					return nil, fmt.Errorf("record %s: field %q: %w", recs[i].Origin, field, err)
				}
				recs[i].EventTime = t
			}
			return recs, nil
		}, nil
	}
}

// FieldKey is a Go-native key function using a top-level field of object
// records, formatted as a string (numbers without a trailing ".0").
func FieldKey(field string) func() (KeyFunc, error) {
	return func() (KeyFunc, error) {
		return func(ctx context.Context, recs []operators.Record) error {
			for i := range recs {
				m, _ := recs[i].Value.(map[string]any)
				switch v := m[field].(type) {
				case string:
					recs[i].Key = v
				case float64:
					recs[i].Key = strconv.FormatFloat(v, 'f', -1, 64)
				case nil:
					recs[i].Key = ""
				default:
					recs[i].Key = fmt.Sprint(v)
				}
			}
			return nil
		}, nil
	}
}
