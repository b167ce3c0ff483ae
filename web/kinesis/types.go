package kinesis

// Request and response shapes of the API, named and tagged as AWS names
// them. Optional request members are pointers so that validation can tell
// "absent" from "zero"; the same tags drive both codecs (fxamacker/cbor
// reads `json` tags).

type streamRef struct {
	StreamName *string `json:"StreamName,omitempty"`
	StreamARN  *string `json:"StreamARN,omitempty"`
}

type streamModeDetails struct {
	StreamMode *string `json:"StreamMode"`
}

type createStreamInput struct {
	StreamName          *string            `json:"StreamName"`
	ShardCount          *int64             `json:"ShardCount"`
	StreamModeDetails   *streamModeDetails `json:"StreamModeDetails"`
	Tags                map[string]string  `json:"Tags"`
	MaxRecordSizeInKiB  *int64             `json:"MaxRecordSizeInKiB"`
	WarmThroughputMiBps *int64             `json:"WarmThroughputMiBps"`
}

type deleteStreamInput struct {
	streamRef
	EnforceConsumerDeletion *bool `json:"EnforceConsumerDeletion"`
}

type describeStreamInput struct {
	streamRef
	Limit                 *int64  `json:"Limit"`
	ExclusiveStartShardId *string `json:"ExclusiveStartShardId"`
}

type hashKeyRange struct {
	StartingHashKey string `json:"StartingHashKey"`
	EndingHashKey   string `json:"EndingHashKey"`
}

type seqRange struct {
	StartingSequenceNumber string  `json:"StartingSequenceNumber"`
	EndingSequenceNumber   *string `json:"EndingSequenceNumber,omitempty"`
}

type shardOut struct {
	ShardId               string       `json:"ShardId"`
	ParentShardId         *string      `json:"ParentShardId,omitempty"`
	AdjacentParentShardId *string      `json:"AdjacentParentShardId,omitempty"`
	HashKeyRange          hashKeyRange `json:"HashKeyRange"`
	SequenceNumberRange   seqRange     `json:"SequenceNumberRange"`
}

type enhancedMetrics struct {
	ShardLevelMetrics []string `json:"ShardLevelMetrics"`
}

// streamHead is what DescribeStream and DescribeStreamSummary both say of
// a stream (Handler.streamHead).
type streamHead struct {
	StreamName              string            `json:"StreamName"`
	StreamARN               string            `json:"StreamARN"`
	StreamStatus            string            `json:"StreamStatus"`
	StreamModeDetails       streamModeOut     `json:"StreamModeDetails"`
	RetentionPeriodHours    int               `json:"RetentionPeriodHours"`
	StreamCreationTimestamp awsTime           `json:"StreamCreationTimestamp"`
	EnhancedMonitoring      []enhancedMetrics `json:"EnhancedMonitoring"`
	EncryptionType          string            `json:"EncryptionType"`
	KeyId                   *string           `json:"KeyId,omitempty"`
}

type streamDescription struct {
	streamHead
	Shards        []shardOut `json:"Shards"`
	HasMoreShards bool       `json:"HasMoreShards"`
}

type streamModeOut struct {
	StreamMode string `json:"StreamMode"`
}

type describeStreamOutput struct {
	StreamDescription streamDescription `json:"StreamDescription"`
}

type streamDescriptionSummary struct {
	streamHead
	OpenShardCount     int                `json:"OpenShardCount"`
	ConsumerCount      int                `json:"ConsumerCount"`
	MaxRecordSizeInKiB int                `json:"MaxRecordSizeInKiB"`
	WarmThroughput     *warmThroughputOut `json:"WarmThroughput,omitempty"`
}

type describeStreamSummaryOutput struct {
	StreamDescriptionSummary streamDescriptionSummary `json:"StreamDescriptionSummary"`
}

type listStreamsInput struct {
	Limit                    *int64  `json:"Limit"`
	ExclusiveStartStreamName *string `json:"ExclusiveStartStreamName"`
	NextToken                *string `json:"NextToken"`
}

type streamSummary struct {
	StreamName              string        `json:"StreamName"`
	StreamARN               string        `json:"StreamARN"`
	StreamStatus            string        `json:"StreamStatus"`
	StreamModeDetails       streamModeOut `json:"StreamModeDetails"`
	StreamCreationTimestamp awsTime       `json:"StreamCreationTimestamp"`
}

type listStreamsOutput struct {
	StreamNames     []string        `json:"StreamNames"`
	HasMoreStreams  bool            `json:"HasMoreStreams"`
	NextToken       *string         `json:"NextToken,omitempty"`
	StreamSummaries []streamSummary `json:"StreamSummaries"`
}

type shardFilter struct {
	Type      *string  `json:"Type"`
	ShardId   *string  `json:"ShardId"`
	Timestamp *awsTime `json:"Timestamp"`
}

type listShardsInput struct {
	streamRef
	NextToken               *string      `json:"NextToken"`
	ExclusiveStartShardId   *string      `json:"ExclusiveStartShardId"`
	MaxResults              *int64       `json:"MaxResults"`
	StreamCreationTimestamp *awsTime     `json:"StreamCreationTimestamp"`
	ShardFilter             *shardFilter `json:"ShardFilter"`
}

type listShardsOutput struct {
	Shards    []shardOut `json:"Shards"`
	NextToken *string    `json:"NextToken,omitempty"`
}

type putRecordInput struct {
	streamRef
	Data                      []byte  `json:"Data"`
	PartitionKey              *string `json:"PartitionKey"`
	ExplicitHashKey           *string `json:"ExplicitHashKey"`
	SequenceNumberForOrdering *string `json:"SequenceNumberForOrdering"`
}

type putRecordOutput struct {
	ShardId        string `json:"ShardId"`
	SequenceNumber string `json:"SequenceNumber"`
	EncryptionType string `json:"EncryptionType,omitempty"`
}

type putRecordsEntry struct {
	Data            []byte  `json:"Data"`
	PartitionKey    *string `json:"PartitionKey"`
	ExplicitHashKey *string `json:"ExplicitHashKey"`
}

type putRecordsInput struct {
	streamRef
	Records []putRecordsEntry `json:"Records"`
}

type putRecordsResult struct {
	ShardId        string `json:"ShardId,omitempty"`
	SequenceNumber string `json:"SequenceNumber,omitempty"`
	ErrorCode      string `json:"ErrorCode,omitempty"`
	ErrorMessage   string `json:"ErrorMessage,omitempty"`
}

type putRecordsOutput struct {
	FailedRecordCount int                `json:"FailedRecordCount"`
	Records           []putRecordsResult `json:"Records"`
	EncryptionType    string             `json:"EncryptionType,omitempty"`
}

type getShardIteratorInput struct {
	streamRef
	ShardId                *string  `json:"ShardId"`
	ShardIteratorType      *string  `json:"ShardIteratorType"`
	StartingSequenceNumber *string  `json:"StartingSequenceNumber"`
	Timestamp              *awsTime `json:"Timestamp"`
}

type getShardIteratorOutput struct {
	ShardIterator string `json:"ShardIterator"`
}

type getRecordsInput struct {
	streamRef
	ShardIterator *string `json:"ShardIterator"`
	Limit         *int64  `json:"Limit"`
}

type recordOut struct {
	SequenceNumber              string  `json:"SequenceNumber"`
	ApproximateArrivalTimestamp awsTime `json:"ApproximateArrivalTimestamp"`
	Data                        []byte  `json:"Data"`
	PartitionKey                string  `json:"PartitionKey"`
	EncryptionType              string  `json:"EncryptionType,omitempty"`
}

type childShard struct {
	ShardId      string       `json:"ShardId"`
	ParentShards []string     `json:"ParentShards"`
	HashKeyRange hashKeyRange `json:"HashKeyRange"`
}

type getRecordsOutput struct {
	Records            []recordOut  `json:"Records"`
	NextShardIterator  *string      `json:"NextShardIterator,omitempty"`
	MillisBehindLatest int64        `json:"MillisBehindLatest"`
	ChildShards        []childShard `json:"ChildShards,omitempty"`
}

type splitShardInput struct {
	streamRef
	ShardToSplit       *string `json:"ShardToSplit"`
	NewStartingHashKey *string `json:"NewStartingHashKey"`
}

type mergeShardsInput struct {
	streamRef
	ShardToMerge         *string `json:"ShardToMerge"`
	AdjacentShardToMerge *string `json:"AdjacentShardToMerge"`
}

type updateShardCountInput struct {
	streamRef
	TargetShardCount *int64  `json:"TargetShardCount"`
	ScalingType      *string `json:"ScalingType"`
}

type updateShardCountOutput struct {
	StreamName        string `json:"StreamName"`
	StreamARN         string `json:"StreamARN"`
	CurrentShardCount int    `json:"CurrentShardCount"`
	TargetShardCount  int    `json:"TargetShardCount"`
}

type retentionInput struct {
	streamRef
	RetentionPeriodHours *int64 `json:"RetentionPeriodHours"`
}

type addTagsInput struct {
	streamRef
	Tags map[string]string `json:"Tags"`
}

type removeTagsInput struct {
	streamRef
	TagKeys []string `json:"TagKeys"`
}

type listTagsInput struct {
	streamRef
	ExclusiveStartTagKey *string `json:"ExclusiveStartTagKey"`
	Limit                *int64  `json:"Limit"`
}

type tag struct {
	Key   string  `json:"Key"`
	Value *string `json:"Value,omitempty"`
}

type listTagsOutput struct {
	Tags        []tag `json:"Tags"`
	HasMoreTags bool  `json:"HasMoreTags"`
}

type tagResourceInput struct {
	ResourceARN *string           `json:"ResourceARN"`
	Tags        map[string]string `json:"Tags"`
}

type untagResourceInput struct {
	ResourceARN *string  `json:"ResourceARN"`
	TagKeys     []string `json:"TagKeys"`
}

type listTagsForResourceInput struct {
	ResourceARN *string `json:"ResourceARN"`
}

type listTagsForResourceOutput struct {
	Tags []tag `json:"Tags"`
}

type describeLimitsOutput struct {
	ShardLimit               int `json:"ShardLimit"`
	OpenShardCount           int `json:"OpenShardCount"`
	OnDemandStreamCount      int `json:"OnDemandStreamCount"`
	OnDemandStreamCountLimit int `json:"OnDemandStreamCountLimit"`
}

type encryptionInput struct {
	streamRef
	EncryptionType *string `json:"EncryptionType"`
	KeyId          *string `json:"KeyId"`
}

type monitoringInput struct {
	streamRef
	ShardLevelMetrics []string `json:"ShardLevelMetrics"`
}

type monitoringOutput struct {
	StreamName               string   `json:"StreamName"`
	StreamARN                string   `json:"StreamARN"`
	CurrentShardLevelMetrics []string `json:"CurrentShardLevelMetrics"`
	DesiredShardLevelMetrics []string `json:"DesiredShardLevelMetrics"`
}

type updateStreamModeInput struct {
	StreamARN         *string            `json:"StreamARN"`
	StreamModeDetails *streamModeDetails `json:"StreamModeDetails"`
}

type consumerRef struct {
	StreamARN    *string `json:"StreamARN"`
	ConsumerName *string `json:"ConsumerName"`
	ConsumerARN  *string `json:"ConsumerARN"`
}

type consumerOut struct {
	ConsumerName              string  `json:"ConsumerName"`
	ConsumerARN               string  `json:"ConsumerARN"`
	ConsumerStatus            string  `json:"ConsumerStatus"`
	ConsumerCreationTimestamp awsTime `json:"ConsumerCreationTimestamp"`
	StreamARN                 string  `json:"StreamARN,omitempty"`
}

type registerConsumerInput struct {
	StreamARN    *string           `json:"StreamARN"`
	ConsumerName *string           `json:"ConsumerName"`
	Tags         map[string]string `json:"Tags"`
}

type registerConsumerOutput struct {
	Consumer consumerOut `json:"Consumer"`
}

type describeConsumerOutput struct {
	ConsumerDescription consumerOut `json:"ConsumerDescription"`
}

type listConsumersInput struct {
	StreamARN               *string  `json:"StreamARN"`
	NextToken               *string  `json:"NextToken"`
	MaxResults              *int64   `json:"MaxResults"`
	StreamCreationTimestamp *awsTime `json:"StreamCreationTimestamp"`
}

type listConsumersOutput struct {
	Consumers []consumerOut `json:"Consumers"`
	NextToken *string       `json:"NextToken,omitempty"`
}

type startingPosition struct {
	Type           *string  `json:"Type"`
	SequenceNumber *string  `json:"SequenceNumber"`
	Timestamp      *awsTime `json:"Timestamp"`
}

type subscribeInput struct {
	ConsumerARN      *string           `json:"ConsumerARN"`
	ShardId          *string           `json:"ShardId"`
	StartingPosition *startingPosition `json:"StartingPosition"`
}

type subscribeEvent struct {
	Records                    []recordOut  `json:"Records"`
	ContinuationSequenceNumber *string      `json:"ContinuationSequenceNumber,omitempty"`
	MillisBehindLatest         int64        `json:"MillisBehindLatest"`
	ChildShards                []childShard `json:"ChildShards,omitempty"`
}

type empty struct{}
