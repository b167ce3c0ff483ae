package kinesis

import (
	"bytes"
	"encoding/base64"
	"reflect"
	"time"

	"encoding/json"
	"fmt"
	"github.com/fxamacker/cbor/v2"
	"hash/fnv"
	"math"
	"math/big"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"
)

// The request model: for every operation, the members AWS's model gives
// its input, their types and constraints. A JSON request is checked
// against it before the operation runs, in AWS's two phases: first the
// types ("SerializationException", stopping at the first member that is
// not of its type, in AWS's words), then the constraints
// ("ValidationException" listing every failed constraint, at most ten,
// with AWS's wording and member paths). Operations still decode into
// their own structs and make the checks that need state (does the stream
// exist, is the shard open).

type kind uint8

const (
	kString kind = iota
	kInt         // 32-bit, clamped as AWS clamps huge numbers
	kLong        // 64-bit, clamped
	kBool
	kBlob // base64 in JSON
	kTime // epoch seconds
	kList
	kMap
	kStruct
	kDouble
)

// shape is one type of AWS's model with its constraints.
type shape struct {
	kind           kind
	name           string // structure name, as AWS renders structures in lists
	minLen, maxLen int    // -1: none (strings: UTF-16 units; blobs: bytes; lists, maps: entries)
	minVal, maxVal int64
	hasMin, hasMax bool
	pattern        *regexp.Regexp
	patText        string
	enum           []string
	elem           *shape // list member, map value
	key            *shape // map key
	members        []member
}

type member struct {
	name     string
	required bool
	// unlessARN: required only when the request has no StreamARN (AWS
	// names the stream by either).
	unlessARN bool
	s         *shape
}

func str(lo, hi int, pat string) *shape {
	s := &shape{kind: kString, minLen: lo, maxLen: hi}
	if pat != "" {
		s.pattern = regexp.MustCompile("^(?:" + pat + ")$")
		s.patText = pat
	}
	return s
}

func enumOf(vals ...string) *shape {
	return &shape{kind: kString, minLen: -1, maxLen: -1, enum: vals}
}

func intIn(lo, hi int64) *shape {
	return &shape{kind: kInt, minLen: -1, maxLen: -1, minVal: lo, maxVal: hi, hasMin: true, hasMax: true}
}

func intMin(lo int64) *shape {
	return &shape{kind: kInt, minLen: -1, maxLen: -1, minVal: lo, hasMin: true}
}

func longMin(lo int64) *shape {
	return &shape{kind: kLong, minLen: -1, maxLen: -1, minVal: lo, hasMin: true}
}

func blob(lo, hi int) *shape { return &shape{kind: kBlob, minLen: lo, maxLen: hi} }

func listOf(elem *shape, lo, hi int) *shape {
	return &shape{kind: kList, elem: elem, minLen: lo, maxLen: hi}
}

func mapOf(key, val *shape, lo, hi int) *shape {
	return &shape{kind: kMap, key: key, elem: val, minLen: lo, maxLen: hi}
}

func structOf(name string, ms ...member) *shape {
	return &shape{kind: kStruct, name: name, minLen: -1, maxLen: -1, members: ms}
}

func req(name string, s *shape) member { return member{name: name, required: true, s: s} }
func opt(name string, s *shape) member { return member{name: name, s: s} }

var (
	tBool      = &shape{kind: kBool, minLen: -1, maxLen: -1}
	tTime      = &shape{kind: kTime, minLen: -1, maxLen: -1}
	tString    = str(-1, -1, "")
	tStreamNm  = str(1, 128, "[a-zA-Z0-9_.-]+")
	tStreamARN = str(1, 2048, "arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+")
	tStreamID  = str(1, 24, "[a-zA-Z0-9]+")
	tShardID   = str(1, 128, "[a-zA-Z0-9_.-]+")
	tConsARN   = str(1, 2048, "^(arn):aws.*:kinesis:.*:\\d{12}:.*stream\\/[a-zA-Z0-9_.-]+\\/consumer\\/[a-zA-Z0-9_.-]+:[0-9]+")
	tConsName  = str(1, 128, "[a-zA-Z0-9_.-]+")
	tResARN    = str(1, 2048, "arn:aws.*:kinesis:.*:\\d{12}:.*stream\\/\\S+")
	tSeqNum    = str(-1, -1, "0|([1-9]\\d{0,128})")
	tHashKey   = str(-1, -1, "0|([1-9]\\d{0,38})")
	tNextToken = str(1, 1048576, "")
	tTagKey    = str(1, 128, "")
	tTagValue  = str(0, 256, "")
	tKeyID     = str(1, 2048, "")
	tEncType   = enumOf("NONE", "KMS")
	tMetrics   = listOf(enumOf("IncomingBytes", "IncomingRecords", "OutgoingBytes", "OutgoingRecords", "WriteProvisionedThroughputExceeded", "ReadProvisionedThroughputExceeded", "IteratorAgeMilliseconds", "ALL"), 1, 7)
	tMode      = structOf("StreamModeDetails", req("StreamMode", enumOf("PROVISIONED", "ON_DEMAND")))
	tChanName  = str(1, 128, "[a-zA-Z0-9_.-]+")
	tChanARN   = str(1, 2048, "arn:aws.*:kinesis:.*:\\d{12}:channel/\\S+")
	tRoleARN   = str(1, 2048, "arn:aws.*:iam::\\d{12}:role/\\S+")
	tPolicy    = str(1, 20480, "")
)

func tagMap(lo, hi int) *shape { return mapOf(tTagKey, tTagValue, lo, hi) }

// streamMembers are the ways most operations name their stream.
func streamMembers(nameRequired bool) []member {
	return []member{{name: "StreamName", unlessARN: !nameRequired, required: nameRequired, s: tStreamNm}, opt("StreamARN", tStreamARN), opt("StreamId", tStreamID)}
}

func in(ms ...any) *shape {
	var out []member
	for _, m := range ms {
		switch x := m.(type) {
		case member:
			out = append(out, x)
		case []member:
			out = append(out, x...)
		}
	}
	return structOf("", out...)
}

var putRecordsEntryModel = structOf("PutRecordsRequestEntry",
	req("Data", blob(-1, maxRecordBytes)),
	opt("ExplicitHashKey", tHashKey),
	req("PartitionKey", str(1, 256, "")),
)

var channelStreamConfig = structOf("ChannelStreamConfiguration", req("StreamARN", tStreamARN))

// models maps each operation to its input shape.
var models = map[string]*shape{
	"AddTagsToStream": in(req("Tags", tagMap(1, 10)), streamMembers(false)),
	"CreateStream": in(req("StreamName", tStreamNm), opt("ShardCount", intIn(1, 100000)),
		opt("StreamModeDetails", tMode), opt("Tags", tagMap(0, 50)), opt("MaxRecordSizeInKiB", intIn(1024, 10240)),
		opt("WarmThroughputMiBps", intMin(0))),
	"DecreaseStreamRetentionPeriod": in(req("RetentionPeriodHours", intMin(1)), streamMembers(false)),
	"DeleteStream":                  in(opt("EnforceConsumerDeletion", tBool), streamMembers(false)),
	"DeregisterStreamConsumer":      in(opt("StreamARN", tStreamARN), opt("ConsumerName", tConsName), opt("ConsumerARN", tConsARN)),
	"DescribeLimits":                in(),
	"DescribeStream":                in(opt("Limit", intIn(1, 10000)), opt("ExclusiveStartShardId", tShardID), streamMembers(false)),
	"DescribeStreamConsumer":        in(opt("StreamARN", tStreamARN), opt("ConsumerName", tConsName), opt("ConsumerARN", tConsARN)),
	"DescribeStreamSummary":         in(streamMembers(false)),
	"DisableEnhancedMonitoring":     in(req("ShardLevelMetrics", tMetrics), streamMembers(false)),
	"EnableEnhancedMonitoring":      in(req("ShardLevelMetrics", tMetrics), streamMembers(false)),
	"GetRecords":                    in(opt("Limit", intIn(1, 10000)), req("ShardIterator", str(1, 512, "")), opt("StreamARN", tStreamARN), opt("StreamId", tStreamID)),
	"GetShardIterator": in(req("ShardIteratorType", enumOf("AFTER_SEQUENCE_NUMBER", "LATEST", "AT_TIMESTAMP", "AT_SEQUENCE_NUMBER", "TRIM_HORIZON")),
		req("ShardId", tShardID), opt("StartingSequenceNumber", tSeqNum), opt("Timestamp", tTime), streamMembers(false)),
	"IncreaseStreamRetentionPeriod": in(req("RetentionPeriodHours", intMin(1)), streamMembers(false)),
	"ListShards": in(opt("ExclusiveStartShardId", tShardID), opt("MaxResults", intIn(1, 10000)), opt("NextToken", tNextToken),
		opt("ShardFilter", structOf("ShardFilter", req("Type", enumOf("AFTER_SHARD_ID", "AT_TRIM_HORIZON", "FROM_TRIM_HORIZON", "AT_LATEST", "AT_TIMESTAMP", "FROM_TIMESTAMP")),
			opt("ShardId", tShardID), opt("Timestamp", tTime))),
		opt("StreamCreationTimestamp", tTime), opt("StreamName", tStreamNm), opt("StreamARN", tStreamARN), opt("StreamId", tStreamID)),
	"ListStreamConsumers": in(opt("MaxResults", intIn(1, 10000)), opt("NextToken", tNextToken), req("StreamARN", tStreamARN), opt("StreamCreationTimestamp", tTime)),
	"ListStreams":         in(opt("ExclusiveStartStreamName", tStreamNm), opt("Limit", intIn(1, 10000)), opt("NextToken", tNextToken)),
	"ListTagsForResource": in(req("ResourceARN", tResARN), opt("StreamId", tStreamID)),
	"ListTagsForStream":   in(opt("ExclusiveStartTagKey", tTagKey), opt("Limit", intIn(1, 50)), streamMembers(false)),
	"MergeShards":         in(req("AdjacentShardToMerge", tShardID), req("ShardToMerge", tShardID), streamMembers(false)),
	"PutRecord": in(req("Data", blob(-1, maxRecordBytes)), opt("ExplicitHashKey", tHashKey), req("PartitionKey", str(1, 256, "")),
		opt("SequenceNumberForOrdering", tSeqNum), streamMembers(false)),
	"PutRecords":             in(req("Records", listOf(putRecordsEntryModel, 1, 500)), streamMembers(false)),
	"RegisterStreamConsumer": in(req("ConsumerName", tConsName), req("StreamARN", tStreamARN), opt("Tags", tagMap(1, 50))),
	"RemoveTagsFromStream":   in(req("TagKeys", listOf(tTagKey, 1, 10)), streamMembers(false)),
	"SplitShard":             in(req("NewStartingHashKey", tHashKey), req("ShardToSplit", tShardID), streamMembers(false)),
	"StartStreamEncryption":  in(req("EncryptionType", tEncType), req("KeyId", tKeyID), streamMembers(false)),
	"StopStreamEncryption":   in(req("EncryptionType", tEncType), req("KeyId", tKeyID), streamMembers(false)),
	"SubscribeToShard": in(req("ConsumerARN", tConsARN), req("ShardId", tShardID),
		req("StartingPosition", structOf("StartingPosition", req("Type", enumOf("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER", "TRIM_HORIZON", "LATEST", "AT_TIMESTAMP")),
			opt("SequenceNumber", tSeqNum), opt("Timestamp", tTime)))),
	"TagResource":      in(req("ResourceARN", tResARN), req("Tags", tagMap(1, 50)), opt("StreamId", tStreamID)),
	"UntagResource":    in(req("ResourceARN", tResARN), req("TagKeys", listOf(tTagKey, 1, 50)), opt("StreamId", tStreamID)),
	"UpdateShardCount": in(req("ScalingType", enumOf("UNIFORM_SCALING")), req("TargetShardCount", intMin(1)), streamMembers(false)),
	"UpdateStreamMode": in(req("StreamARN", tStreamARN), req("StreamModeDetails", tMode), opt("StreamId", tStreamID), opt("WarmThroughputMiBps", intMin(0))),

	"PutResourcePolicy":       in(req("ResourceARN", tResARN), req("Policy", tPolicy), opt("StreamId", tStreamID)),
	"GetResourcePolicy":       in(req("ResourceARN", tResARN), opt("StreamId", tStreamID)),
	"DeleteResourcePolicy":    in(req("ResourceARN", tResARN), opt("StreamId", tStreamID)),
	"DescribeAccountSettings": in(),
	"UpdateAccountSettings": in(req("MinimumThroughputBillingCommitment",
		structOf("MinimumThroughputBillingCommitmentInput", req("Status", enumOf("ENABLED", "DISABLED"))))),
	"UpdateMaxRecordSize":                    in(req("MaxRecordSizeInKiB", intIn(1024, 10240)), opt("StreamARN", tStreamARN), opt("StreamId", tStreamID)),
	"UpdateStreamWarmThroughput":             in(req("WarmThroughputMiBps", intMin(0)), streamMembers(false)),
	"UpdateStreamRecordDistributionStrategy": in(req("RecordDistributionStrategy", enumOf("AUTO", "USER_PARTITION_KEY")), opt("StreamARN", tStreamARN), opt("StreamId", tStreamID)),

	"CreateChannel": in(req("ChannelName", tChanName), req("ServiceExecutionRoleARN", tRoleARN),
		req("StreamConfigurationList", listOf(channelStreamConfig, 1, 1)), opt("Tags", tagMap(1, 50))),
	"DescribeChannel": in(req("ChannelARN", tChanARN)),
	"ListChannels":    in(opt("MaxResults", intIn(1, 100)), opt("NextToken", tNextToken)),
	"UpdateChannel":   in(req("ChannelARN", tChanARN)),
	"DeleteChannel":   in(req("ChannelARN", tChanARN)),
}

// maxRecordBytes marks a record's data: its limit is the largest
// maximum record size of any stream (AWS's 1 MiB unless raised, up to
// 10 MiB); each put then checks its own stream's.
const maxRecordBytes = recordMax

const recordMax = -2

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
	if s == nil || len(body) == 0 {
		return nil
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
	if s.enum != nil && !contains(s.enum, x) {
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

func contains(set []string, x string) bool {
	for _, s := range set {
		if s == x {
			return true
		}
	}
	return false
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
