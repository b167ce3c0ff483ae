package kinesis

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"math/big"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/fxamacker/cbor/v2"
)

// Checking a request against its operation's model (model.go): types
// first (SerializationException), then every constraint in AWS's order and
// wording (ValidationException).

// modelError checks a JSON request body against the operation's model and
// returns AWS's SerializationException or ValidationException, or nil.
func modelError(op string, body []byte, recordCap int) *apiError {
	s := models[op]
	if s == nil {
		return nil
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var doc any
	if err := d.Decode(&doc); err != nil || d.More() {
		return &apiError{Type: excSerialization, Status: 400}
	}
	return modelCheck(s, doc, recordCap)
}

// modelErrorCBOR is modelError for a CBOR body: the document is read into
// the JSON protocol's terms (byte strings as base64, numbers and
// timestamps as numbers) and checked the same way.
func modelErrorCBOR(op string, body []byte, recordCap int) *apiError {
	s := models[op]
	if s == nil {
		return nil
	}
	if len(body) == 0 {
		// No body is no members: the required ones are missing, as in
		// "{}".
		return modelCheck(s, nil, recordCap)
	}
	var doc any
	if err := cborGeneric.Unmarshal(body, &doc); err != nil {
		return serializationErr(err)
	}
	return modelCheck(s, fromCBOR(doc), recordCap)
}

var cborGeneric = func() cbor.DecMode {
	m, err := cbor.DecOptions{
		MaxNestedLevels: 32, MaxArrayElements: 100000, MaxMapPairs: 100000,
		DefaultMapType: reflect.TypeOf(map[string]any{}), IndefLength: cbor.IndefLengthAllowed,
		DupMapKey: cbor.DupMapKeyQuiet, TimeTag: cbor.DecTagOptional,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}()

func fromCBOR(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = fromCBOR(e)
		}
		return x
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = fromCBOR(e)
		}
		return out
	case []any:
		for i, e := range x {
			x[i] = fromCBOR(e)
		}
		return x
	case []byte:
		return base64.StdEncoding.EncodeToString(x)
	case uint64:
		return json.Number(strconv.FormatUint(x, 10))
	case int64:
		return json.Number(strconv.FormatInt(x, 10))
	case float64:
		return json.Number(strconv.FormatFloat(x, 'f', -1, 64))
	case float32:
		return json.Number(strconv.FormatFloat(float64(x), 'f', -1, 32))
	case time.Time:
		return json.Number(strconv.FormatInt(x.UnixMilli(), 10))
	case cbor.Tag:
		return fromCBOR(x.Content)
	case big.Int:
		return json.Number(x.String())
	}
	return v
}

func modelCheck(s *shape, doc any, recordCap int) *apiError {
	obj, ok := doc.(map[string]any)
	if !ok {
		if doc == nil {
			obj = map[string]any{}
		} else {
			return serialErr(typeMismatch(s, doc))
		}
	}
	if msg := checkTypes(s, obj); msg != "" {
		return serialErr(msg)
	}
	v := validator{recordCap: recordCap}
	validateStruct(&v, s, obj, "")
	if len(v.msgs) == 0 {
		return nil
	}
	return v.err().(*apiError)
}

func serialErr(msg string) *apiError {
	return &apiError{Type: excSerialization, Message: msg, Status: 400, capital: true}
}

// checkTypes walks a structure's members in the model's order and returns
// AWS's text for the first value that is not of its member's type.
func checkTypes(s *shape, obj map[string]any) string {
	for _, m := range s.members {
		v, ok := obj[m.name]
		if !ok || v == nil {
			continue
		}
		if msg := checkValue(m.s, v); msg != "" {
			return msg
		}
	}
	return ""
}

func checkValue(s *shape, v any) string {
	if msg := typeMismatch(s, v); msg != "" {
		return msg
	}
	switch s.kind {
	case kList:
		for _, e := range v.([]any) {
			if e == nil {
				continue
			}
			if msg := checkValue(s.elem, e); msg != "" {
				return msg
			}
		}
	case kMap:
		for _, e := range v.(map[string]any) {
			if e == nil {
				continue
			}
			if msg := checkValue(s.elem, e); msg != "" {
				return msg
			}
		}
	case kStruct:
		return checkTypes(s, v.(map[string]any))
	}
	return ""
}

// typeMismatch returns AWS's text when v cannot be read as s's type.
func typeMismatch(s *shape, v any) string {
	switch v.(type) {
	case []any:
		if s.kind != kList {
			return "Start of list found where not expected"
		}
		return ""
	case map[string]any:
		if s.kind != kMap && s.kind != kStruct {
			return "Start of structure or map found where not expected."
		}
		return ""
	}
	switch s.kind {
	case kList:
		return "Expected list or null"
	case kMap:
		return "Expected map or null"
	case kStruct:
		return "Expected null"
	}
	javaClass := func() string {
		switch v.(type) {
		case bool:
			return "java.lang.Boolean"
		case json.Number:
			return "com.amazon.coral.value.json.numbers.TruncatingBigNumber"
		}
		return "java.lang.String"
	}
	switch s.kind {
	case kString:
		if _, ok := v.(string); !ok {
			return "class " + javaClass() + " can not be converted to an String"
		}
	case kBool:
		switch x := v.(type) {
		case string:
			if x != "true" && x != "false" {
				return "'" + x + "' can not be converted to an Boolean"
			}
		case json.Number:
			if !strings.ContainsAny(string(x), ".eE") {
				return "class " + javaClass() + " can not be converted to an Boolean"
			}
		}
	case kInt, kLong, kDouble:
		if _, ok := v.(json.Number); !ok {
			name := map[kind]string{kInt: "Integer", kLong: "Long", kDouble: "Double"}[s.kind]
			return "class " + javaClass() + " can not be converted to an " + name
		}
	case kTime:
		if _, ok := v.(json.Number); !ok {
			return "class " + javaClass() + " can not be converted to milliseconds since epoch"
		}
	case kBlob:
		x, ok := v.(string)
		if !ok {
			return "class " + javaClass() + " can not be converted to a Blob"
		}
		if msg := base64Problem(x); msg != "" {
			return "'" + x + "' can not be converted to a Blob: " + msg
		}
	}
	return ""
}

// base64Problem returns AWS's text for a string that is not canonical
// base64, or "".
func base64Problem(s string) string {
	if len(s)%4 != 0 {
		return "Base64 encoded length is expected a multiple of 4 bytes but found: " + strconv.Itoa(len(s))
	}
	pad := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '+', c == '/':
			if pad > 0 {
				return "Invalid Base64 character: '" + string(c) + "'"
			}
		case c == '=' && i >= len(s)-2 && i%4 >= 2:
			pad++
		default:
			return "Invalid Base64 character: '" + string(rune(c)) + "'"
		}
	}
	if pad > 0 {
		last := b64val(s[len(s)-pad-1])
		if pad == 1 && last&0x3 != 0 || pad == 2 && last&0xf != 0 {
			return "Invalid last non-pad Base64 character dectected"
		}
	}
	return ""
}

func b64val(c byte) byte {
	switch {
	case c >= 'A' && c <= 'Z':
		return c - 'A'
	case c >= 'a' && c <= 'z':
		return c - 'a' + 26
	case c >= '0' && c <= '9':
		return c - '0' + 52
	case c == '+':
		return 62
	}
	return 63
}

// lowerFirst turns a member name into AWS's path element.
func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

func validateStruct(v *validator, s *shape, obj map[string]any, prefix string) {
	for _, m := range s.members {
		val, ok := obj[m.name]
		path := prefix + lowerFirst(m.name)
		if !ok || val == nil {
			if m.required || m.unlessARN && obj["StreamARN"] == nil {
				v.add(nil, path, "not be null")
			}
			continue
		}
		validateValue(v, m.s, val, path)
	}
}

func validateValue(v *validator, s *shape, val any, path string) {
	switch s.kind {
	case kString:
		x := val.(string)
		for _, c := range stringConstraints(s, x) {
			v.add(x, path, c)
		}
	case kBlob:
		n := base64DecodedLen(val.(string))
		r := "java.nio.HeapByteBuffer[pos=0 lim=" + strconv.Itoa(n) + " cap=" + strconv.Itoa(n) + "]"
		if s.minLen >= 0 && n < s.minLen {
			v.addRaw(r, path, fmt.Sprintf("have length greater than or equal to %d", s.minLen))
		}
		hi := s.maxLen
		if hi == recordMax {
			hi = v.recordCap
		}
		if hi >= 0 && n > hi {
			v.addRaw(r, path, fmt.Sprintf("have length less than or equal to %d", hi))
		}
	case kInt, kLong:
		n := clampNumber(val.(json.Number), s.kind)
		if s.hasMin && n < s.minVal {
			v.add(n, path, fmt.Sprintf("have value greater than or equal to %d", s.minVal))
		}
		if s.hasMax && n > s.maxVal {
			v.add(n, path, fmt.Sprintf("have value less than or equal to %d", s.maxVal))
		}
	case kList:
		l := val.([]any)
		r := renderValue(val)
		if s.minLen >= 0 && len(l) < s.minLen {
			v.addRaw(r, path, fmt.Sprintf("have length greater than or equal to %d", s.minLen))
		}
		if s.maxLen >= 0 && len(l) > s.maxLen {
			v.addRaw(r, path, fmt.Sprintf("have length less than or equal to %d", s.maxLen))
		}
		if s.elem.kind == kStruct {
			for i, e := range l {
				if e, ok := e.(map[string]any); ok {
					validateStruct(v, s.elem, e, path+"."+strconv.Itoa(i+1)+".member.")
				}
			}
			return
		}
		for _, e := range l {
			if x, ok := e.(string); ok && len(stringConstraints(s.elem, x)) > 0 {
				v.addRaw(r, path, "satisfy constraint: ["+strings.Join(describeConstraints(s.elem), ", ")+"]")
				break
			}
		}
	case kMap:
		m := val.(map[string]any)
		r := renderValue(val)
		if s.minLen >= 0 && len(m) < s.minLen {
			v.addRaw(r, path, fmt.Sprintf("have length greater than or equal to %d", s.minLen))
		}
		if s.maxLen >= 0 && len(m) > s.maxLen {
			v.addRaw(r, path, fmt.Sprintf("have length less than or equal to %d", s.maxLen))
		}
		badKey, badVal := false, false
		for k, e := range m {
			badKey = badKey || len(stringConstraints(s.key, k)) > 0
			if x, ok := e.(string); ok {
				badVal = badVal || len(stringConstraints(s.elem, x)) > 0
			}
		}
		if badKey {
			v.addMsg("Value '" + r + "' at '" + path + "' failed to satisfy constraint: Map keys must satisfy constraint: [" + strings.Join(describeConstraints(s.key), ", ") + "]")
		}
		if badVal {
			v.addMsg("Value '" + r + "' at '" + path + "' failed to satisfy constraint: Map value must satisfy constraint: [" + strings.Join(describeConstraints(s.elem), ", ") + "]")
		}
	case kStruct:
		validateStruct(v, s, val.(map[string]any), path+".")
	}
}

// stringConstraints returns the constraints x fails, in AWS's order.
func stringConstraints(s *shape, x string) []string {
	var out []string
	if s.pattern != nil && !s.pattern.MatchString(x) {
		out = append(out, "satisfy regular expression pattern: "+s.patText)
	}
	if s.enum != nil && !slices.Contains(s.enum, x) {
		out = append(out, "satisfy enum value set: ["+strings.Join(s.enum, ", ")+"]")
	}
	n := len(utf16.Encode([]rune(x)))
	if s.minLen >= 0 && n < s.minLen {
		out = append(out, fmt.Sprintf("have length greater than or equal to %d", s.minLen))
	}
	if s.maxLen >= 0 && n > s.maxLen {
		out = append(out, fmt.Sprintf("have length less than or equal to %d", s.maxLen))
	}
	return out
}

// describeConstraints lists every constraint of a list member or map
// key/value, as AWS words them inside "must satisfy constraint: [...]".
func describeConstraints(s *shape) []string {
	var out []string
	if s.maxLen >= 0 {
		out = append(out, fmt.Sprintf("Member must have length less than or equal to %d", s.maxLen))
	}
	if s.minLen >= 0 {
		out = append(out, fmt.Sprintf("Member must have length greater than or equal to %d", s.minLen))
	}
	if s.pattern != nil {
		out = append(out, "Member must satisfy regular expression pattern: "+s.patText)
	}
	if s.enum != nil {
		out = append(out, "Member must satisfy enum value set: ["+strings.Join(s.enum, ", ")+"]")
	}
	return out
}

// clampNumber reads a JSON number as AWS does: the fraction is dropped and
// values beyond the type's range become its bounds.
func clampNumber(n json.Number, k kind) int64 {
	lo, hi := int64(math.MinInt32), int64(math.MaxInt32)
	if k == kLong {
		lo, hi = math.MinInt64, math.MaxInt64
	}
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return max(lo, min(hi, i))
	}
	f, _, err := big.ParseFloat(string(n), 10, 256, big.ToZero)
	if err != nil {
		return 0
	}
	i, _ := f.Int(nil)
	switch {
	case i.Cmp(big.NewInt(lo)) < 0:
		return lo
	case i.Cmp(big.NewInt(hi)) > 0:
		return hi
	}
	return i.Int64()
}

func base64DecodedLen(s string) int {
	n := len(s) / 4 * 3
	if strings.HasSuffix(s, "==") {
		n -= 2
	} else if strings.HasSuffix(s, "=") {
		n--
	}
	return n
}

// renderValue prints a value as AWS (Java) prints it in messages.
func renderValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return x
	case json.Number:
		return string(x)
	case bool:
		return strconv.FormatBool(x)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			if m, ok := e.(map[string]any); ok {
				parts[i] = renderStruct(m)
			} else {
				parts[i] = renderValue(e)
			}
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + "=" + renderValue(x[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprint(v)
}

// renderStruct prints a structure inside a list the way Java's default
// toString does: class name and a hash of the contents.
func renderStruct(m map[string]any) string {
	b, _ := json.Marshal(m)
	h := fnv.New32a()
	h.Write(b)
	return fmt.Sprintf("com.amazonaws.kinesis.v20131202.PutRecordsRequestEntry@%08x", h.Sum32())
}
