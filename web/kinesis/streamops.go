package kinesis

import (
	"strings"
	"time"

	"github.com/runnel-dev/runnel/streams"
)

// Stream attributes this package keeps in streams.StreamInfo.Attrs.
const (
	attrMode       = "kinesis.mode"
	attrEncryption = "kinesis.encryption"
	attrKeyID      = "kinesis.key_id"
	attrMonitoring = "kinesis.monitoring"
	attrConsumers  = "kinesis.consumers"
)

const (
	modeProvisioned = "PROVISIONED"
	modeOnDemand    = "ON_DEMAND"
	statusDeleting  = "DELETING"

	onDemandShards       = 4
	onDemandStreamLimit  = 50
	limitedShardLimit    = 500
	unlimitedShardLimit  = 100000
	maxTagsPerStream     = 50
	maxTagsPerRequest    = 10
	defaultDescribeLimit = 100
)

func modeOf(info *streams.StreamInfo) string {
	if m := info.Attrs[attrMode]; m != "" {
		return m
	}
	return modeProvisioned
}

func encryptionOf(info *streams.StreamInfo) (string, *string) {
	if info.Attrs[attrEncryption] == "KMS" {
		k := info.Attrs[attrKeyID]
		return "KMS", &k
	}
	return "NONE", nil
}

func monitoringOf(info *streams.StreamInfo) []string {
	s := info.Attrs[attrMonitoring]
	if s == "" {
		return []string{}
	}
	return strings.Split(s, ",")
}

func (h *Handler) shardLimit() int {
	lim := unlimitedShardLimit
	if h.opts.ShardLimits {
		lim = limitedShardLimit
	}
	// The server's own cap (runnel serve --max-shards) bounds it too.
	return min(lim, h.store.Limits().MaxOpenShards)
}

// openShardsInAccount counts the open shards of every stream.
func (h *Handler) openShardsInAccount() (shards, onDemand int) {
	for _, s := range h.store.ListStreams() {
		if modeOf(&s) == modeOnDemand {
			onDemand++
		}
		for _, sh := range s.Shards {
			if sh.Open {
				shards++
			}
		}
	}
	return shards, onDemand
}

func (h *Handler) checkShardLimit(add int) error {
	cur, _ := h.openShardsInAccount()
	if lim := h.shardLimit(); cur+add > lim {
		return newErr(excLimitExceeded, "This request would exceed the shard limit for the account %s in %s. Current shard count for the account: %d. Limit: %d. Number of additional shards that would have resulted from this request: %d. Refer to the AWS Service Limits page (http://docs.aws.amazon.com/general/latest/gr/aws_service_limits.html) for current limits and how to request higher limits.",
			h.opts.AccountID, h.opts.Region, cur, lim, add)
	}
	return nil
}

func (h *Handler) deletingUntil(name string) (time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	until, ok := h.mu.deleting[name]
	if ok && !h.opts.Now().Before(until) {
		delete(h.mu.deleting, name)
		return time.Time{}, false
	}
	return until, ok
}

func (h *Handler) createStream(r *request) (any, error) {
	var in createStreamInput
	if err := decode(r.codec, r.body, &in); err != nil {
		return nil, err
	}
	var v validator
	if v.required("streamName", in.StreamName != nil) {
		v.length("streamName", in.StreamName, 1, 128)
		v.pattern("streamName", in.StreamName, validStreamName, "[a-zA-Z0-9_.-]+")
	}
	v.rangeInt("shardCount", in.ShardCount, 1, 100000)
	mode := modeProvisioned
	if in.StreamModeDetails != nil {
		if v.required("streamModeDetails.streamMode", in.StreamModeDetails.StreamMode != nil) {
			v.enum("streamModeDetails.streamMode", in.StreamModeDetails.StreamMode, modeProvisioned, modeOnDemand)
			mode = *in.StreamModeDetails.StreamMode
		}
	}
	if len(in.Tags) > maxTagsPerStream {
		v.add("{...}", "tags", "have length less than or equal to 50")
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	n := onDemandShards
	if mode == modeProvisioned {
		if in.ShardCount == nil {
			return nil, newErr(excInvalidArgument, "ShardCount is required for a stream in PROVISIONED mode.")
		}
		n = int(*in.ShardCount)
	}
	if n > streams.MaxShards {
		return nil, newErr(excLimitExceeded, "A stream of this server holds at most %d shards; requested %d.", streams.MaxShards, n)
	}
	if err := h.checkShardLimit(n); err != nil {
		return nil, err
	}
	if err := checkTagChars(in.Tags); err != nil {
		return nil, err
	}
	name := *in.StreamName
	if _, deleting := h.deletingUntil(name); deleting {
		return nil, h.inUse(name)
	}
	h.forget(name)
	attrs := map[string]string{attrMode: mode}
	if in.MaxRecordSizeInKiB != nil {
		attrs[attrMaxRecordKiB] = itoa(int(*in.MaxRecordSizeInKiB))
		h.raiseRecordCap(int(*in.MaxRecordSizeInKiB))
	}
	if in.WarmThroughputMiBps != nil {
		attrs[attrWarmMiBps] = itoa(int(*in.WarmThroughputMiBps))
	}
	_, err := h.store.CreateStream(name, n, streams.CreateOptions{
		Tags: in.Tags, Attrs: attrs, Activation: h.opts.CreateDelay,
	})
	if err != nil {
		return nil, h.mapErr(name, err)
	}
	return empty{}, nil
}

func (h *Handler) deleteStream(r *request) (any, error) {
	var in deleteStreamInput
	if err := decode(r.codec, r.body, &in); err != nil {
		return nil, err
	}
	name, err := h.resolve(in.streamRef)
	if err != nil {
		return nil, err
	}
	info, err := h.describe(name)
	if err != nil {
		return nil, err
	}
	if cs := consumersOf(&info); len(cs) > 0 && (in.EnforceConsumerDeletion == nil || !*in.EnforceConsumerDeletion) {
		return nil, newErr(excResourceInUse, "Stream %s under account %s has %d registered consumers; deregister them or set EnforceConsumerDeletion.", name, h.opts.AccountID, len(cs))
	}
	err = h.deleteStreamUnread(name, info.Created, func() error {
		if err := h.store.DeleteStream(name); err != nil {
			return h.mapErr(name, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	h.forget(name)
	h.endSubscriptions(name)
	if h.opts.CreateDelay > 0 {
		h.mu.Lock()
		h.mu.deleting[name] = h.opts.Now().Add(h.opts.CreateDelay)
		h.mu.Unlock()
	}
	return empty{}, nil
}

// describeOrDeleting describes a stream; a stream inside its DELETING
// window comes back with that status and no shards.
func (h *Handler) describeOrDeleting(name string) (streams.StreamInfo, error) {
	info, err := h.describe(name)
	if err == nil {
		return info, nil
	}
	if _, ok := h.deletingUntil(name); ok {
		return streams.StreamInfo{Name: name, Status: statusDeleting, RetentionHours: streams.DefaultRetentionHours, Created: h.opts.Now()}, nil
	}
	return info, err
}

func (h *Handler) shardOut(si *streams.ShardInfo) shardOut {
	o := shardOut{
		ShardId:             si.ID,
		HashKeyRange:        hashKeyRange{si.Range.Start.String(), si.Range.End.String()},
		SequenceNumberRange: seqRange{StartingSequenceNumber: si.StartingSequenceNumber()},
	}
	if si.Parent != "" {
		p := si.Parent
		o.ParentShardId = &p
	}
	if si.AdjacentParent != "" {
		a := si.AdjacentParent
		o.AdjacentParentShardId = &a
	}
	if !si.Open {
		e := si.EndingSequenceNumber()
		o.SequenceNumberRange.EndingSequenceNumber = &e
	}
	return o
}

func (h *Handler) describeStream(r *request) (any, error) {
	var in describeStreamInput
	name, err := h.streamInput(r, &in, &in.streamRef, func(v *validator) {
		v.rangeInt("limit", in.Limit, 1, 10000)
		v.length("exclusiveStartShardId", in.ExclusiveStartShardId, 1, 128)
	})
	if err != nil {
		return nil, err
	}
	info, err := h.describeOrDeleting(name)
	if err != nil {
		return nil, err
	}
	limit := defaultDescribeLimit
	if in.Limit != nil {
		limit = int(*in.Limit)
	}
	after := -1
	if in.ExclusiveStartShardId != nil {
		after = shardIndexForPaging(*in.ExclusiveStartShardId)
	}
	d := streamDescription{streamHead: h.streamHead(name, &info), Shards: []shardOut{}}
	if info.Status != streams.StatusCreating {
		for i := range info.Shards {
			si := &info.Shards[i]
			if si.Expired || si.Index <= after {
				continue
			}
			if len(d.Shards) == limit {
				d.HasMoreShards = true
				break
			}
			d.Shards = append(d.Shards, h.shardOut(si))
		}
	}
	return describeStreamOutput{d}, nil
}

// shardIndexForPaging orders an ExclusiveStartShardId that may not exist.
func shardIndexForPaging(id string) int {
	if idx, ok := streams.ParseShardID(id); ok {
		return idx
	}
	if strings.HasPrefix(id, "shardId-") {
		return -1
	}
	return 1 << 30
}

func (h *Handler) describeStreamSummary(r *request) (any, error) {
	var in streamRef
	if err := decode(r.codec, r.body, &in); err != nil {
		return nil, err
	}
	name, err := h.resolve(in)
	if err != nil {
		return nil, err
	}
	info, err := h.describeOrDeleting(name)
	if err != nil {
		return nil, err
	}
	open := 0
	for _, s := range info.Shards {
		if s.Open {
			open++
		}
	}
	return describeStreamSummaryOutput{streamDescriptionSummary{
		streamHead: h.streamHead(name, &info), OpenShardCount: open, ConsumerCount: len(consumersOf(&info)),
		MaxRecordSizeInKiB: MaxRecordBytes(&info) >> 10, WarmThroughput: warmOf(&info),
	}}, nil
}

// streamHead says of the stream name, described in info, what
// DescribeStream and DescribeStreamSummary both say.
func (h *Handler) streamHead(name string, info *streams.StreamInfo) streamHead {
	enc, key := encryptionOf(info)
	return streamHead{
		StreamName: name, StreamARN: h.streamARN(name), StreamStatus: info.Status,
		StreamModeDetails:    streamModeOut{modeOf(info)},
		RetentionPeriodHours: info.RetentionHours, StreamCreationTimestamp: awsTime{info.Created},
		EnhancedMonitoring: []enhancedMetrics{{ShardLevelMetrics: monitoringOf(info)}},
		EncryptionType:     enc, KeyId: key,
	}
}

func (h *Handler) listStreams(r *request) (any, error) {
	var in listStreamsInput
	if err := input(r, &in, func(v *validator) {
		v.rangeInt("limit", in.Limit, 1, 10000)
		v.length("exclusiveStartStreamName", in.ExclusiveStartStreamName, 1, 128)
		v.pattern("exclusiveStartStreamName", in.ExclusiveStartStreamName, validStreamName, "[a-zA-Z0-9_.-]+")
		v.length("nextToken", in.NextToken, 1, 1048576)
	}); err != nil {
		return nil, err
	}
	limit := 100
	if in.Limit != nil {
		limit = int(*in.Limit)
	}
	after := ""
	if in.ExclusiveStartStreamName != nil {
		after = *in.ExclusiveStartStreamName
	}
	if in.NextToken != nil {
		var tok pageToken
		if err := h.openToken(tokListStreams, *in.NextToken, &tok); err != nil {
			return nil, err
		}
		after = tok.After
	}
	out := listStreamsOutput{StreamNames: []string{}, StreamSummaries: []streamSummary{}}
	c := callerFrom(r.ctx)
	for _, s := range h.store.ListStreams() {
		if after != "" && s.Name <= after {
			continue
		}
		if c != nil && c.Sees != nil && !c.Sees(s.Name) {
			continue // a caller limited to streams sees only those
		}
		if len(out.StreamNames) == limit {
			out.HasMoreStreams = true
			t := h.sealToken(tokListStreams, pageToken{After: out.StreamNames[len(out.StreamNames)-1]})
			out.NextToken = &t
			break
		}
		out.StreamNames = append(out.StreamNames, s.Name)
		out.StreamSummaries = append(out.StreamSummaries, streamSummary{
			StreamName: s.Name, StreamARN: h.streamARN(s.Name), StreamStatus: s.Status,
			StreamModeDetails: streamModeOut{modeOf(&s)}, StreamCreationTimestamp: awsTime{s.Created},
		})
	}
	return out, nil
}

func (h *Handler) changeRetention(r *request, increase bool) (any, error) {
	var in retentionInput
	name, err := h.streamInput(r, &in, &in.streamRef, func(v *validator) {
		if v.required("retentionPeriodHours", in.RetentionPeriodHours != nil) {
			v.rangeInt("retentionPeriodHours", in.RetentionPeriodHours, 1, 8760)
		}
	})
	if err != nil {
		return nil, err
	}
	hours := int(*in.RetentionPeriodHours)
	if hours < streams.MinRetentionHours {
		return nil, newErr(excInvalidArgument, "Minimum allowed retention period is %d hours. Requested retention period (%d hours) is too short.", streams.MinRetentionHours, hours)
	}
	if _, err := h.activeStream(name); err != nil {
		return nil, err
	}
	err = h.store.UpdateStream(name, func(u *streams.StreamUpdate) error {
		if increase && hours < u.RetentionHours {
			return newErr(excInvalidArgument, "Requested retention period (%d hours) for stream %s can not be shorter than existing retention period (%d hours). Use DecreaseRetentionPeriod API.", hours, name, u.RetentionHours)
		}
		if !increase && hours > u.RetentionHours {
			return newErr(excInvalidArgument, "Requested retention period (%d hours) for stream %s can not be longer than existing retention period (%d hours). Use IncreaseRetentionPeriod API.", hours, name, u.RetentionHours)
		}
		u.RetentionHours = hours
		return nil
	})
	if err != nil {
		return nil, h.mapErr(name, err)
	}
	return empty{}, nil
}

func (h *Handler) increaseRetention(r *request) (any, error) { return h.changeRetention(r, true) }
func (h *Handler) decreaseRetention(r *request) (any, error) { return h.changeRetention(r, false) }

// validActive ends the validation of a request that changes a stream:
// the problems v noted, or else the stream ref names, which must exist
// and be ACTIVE.
func (h *Handler) validActive(v *validator, ref streamRef) (string, streams.StreamInfo, error) {
	if err := v.err(); err != nil {
		return "", streams.StreamInfo{}, err
	}
	name, err := h.resolveValid(ref)
	if err != nil {
		return "", streams.StreamInfo{}, err
	}
	info, err := h.activeStream(name)
	return name, info, err
}

// activeStream describes a stream and requires it to be ACTIVE, as every
// mutating operation does.
func (h *Handler) activeStream(name string) (streams.StreamInfo, error) {
	info, err := h.describe(name)
	if err != nil {
		return info, err
	}
	if info.Status != streams.StatusActive {
		return info, h.notActive(name, info.Status)
	}
	return info, nil
}

func (h *Handler) mapErrOrNil(name string, err error) error {
	if err == nil {
		return nil
	}
	return h.mapErr(name, err)
}

func (h *Handler) describeLimits(r *request) (any, error) {
	var in empty
	if err := decode(r.codec, r.body, &in); err != nil {
		return nil, err
	}
	open, od := h.openShardsInAccount()
	return describeLimitsOutput{ShardLimit: h.shardLimit(), OpenShardCount: open, OnDemandStreamCount: od, OnDemandStreamCountLimit: onDemandStreamLimit}, nil
}
