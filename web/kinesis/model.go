package kinesis

import (
	"regexp"
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
