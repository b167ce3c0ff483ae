package kinesis

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"

	"github.com/runnel-dev/runnel/streams"
)

var shardFilterTypes = []string{"AFTER_SHARD_ID", "AT_TRIM_HORIZON", "FROM_TRIM_HORIZON", "AT_LATEST", "AT_TIMESTAMP", "FROM_TIMESTAMP"}

func (h *Handler) listShards(r *request) (any, error) {
	var in listShardsInput
	if err := decode(r.codec, r.body, &in); err != nil {
		return nil, err
	}
	var v validator
	validateRef(&v, in.streamRef)
	v.length("nextToken", in.NextToken, 1, 1048576)
	v.length("exclusiveStartShardId", in.ExclusiveStartShardId, 1, 128)
	v.rangeInt("maxResults", in.MaxResults, 1, 10000)
	if f := in.ShardFilter; f != nil && v.required("shardFilter.type", f.Type != nil) {
		v.enum("shardFilter.type", f.Type, shardFilterTypes...)
		v.length("shardFilter.shardId", f.ShardId, 1, 128)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	max := 1000
	if in.MaxResults != nil {
		max = int(*in.MaxResults)
	}
	var tok pageToken
	if in.NextToken != nil {
		if in.StreamName != nil || in.StreamARN != nil {
			return nil, newErr(excInvalidArgument, "NextToken and StreamName cannot be provided together.")
		}
		if in.ExclusiveStartShardId != nil || in.ShardFilter != nil || in.StreamCreationTimestamp != nil {
			return nil, newErr(excInvalidArgument, "NextToken cannot be provided together with ExclusiveStartShardId, ShardFilter or StreamCreationTimestamp.")
		}
		if err := h.openToken(tokListShards, *in.NextToken, &tok); err != nil {
			return nil, err
		}
		if in.MaxResults == nil && tok.Max > 0 {
			max = tok.Max
		}
	} else {
		if in.StreamName == nil && in.StreamARN == nil {
			return nil, newErr(excInvalidArgument, "Either NextToken or StreamName should be provided.")
		}
		name, err := h.resolveValid(in.streamRef)
		if err != nil {
			return nil, err
		}
		tok.Stream = name
		if in.ExclusiveStartShardId != nil {
			tok.After = *in.ExclusiveStartShardId
		}
		if f := in.ShardFilter; f != nil {
			tok.Filter = *f.Type
			switch tok.Filter {
			case "AFTER_SHARD_ID":
				if f.ShardId == nil {
					return nil, newErr(excInvalidArgument, "Must specify ShardId in ShardFilter when the filter type is AFTER_SHARD_ID.")
				}
				tok.Shard = *f.ShardId
			case "AT_TIMESTAMP", "FROM_TIMESTAMP":
				if f.Timestamp == nil {
					return nil, newErr(excInvalidArgument, "Must specify Timestamp in ShardFilter when the filter type is %s.", tok.Filter)
				}
				tok.TS = f.Timestamp.UnixMilli()
			default:
				if f.ShardId != nil || f.Timestamp != nil {
					return nil, newErr(excInvalidArgument, "ShardFilter of type %s takes neither ShardId nor Timestamp.", tok.Filter)
				}
			}
		}
		tok.Max = max
	}
	info, err := h.describe(tok.Stream)
	if err != nil {
		return nil, err
	}
	if info.Status == streams.StatusCreating {
		return nil, h.notFound(tok.Stream)
	}
	if in.StreamCreationTimestamp != nil && in.StreamCreationTimestamp.UnixMilli() != info.Created.UnixMilli() {
		return nil, h.notFound(tok.Stream)
	}
	after := -1
	if tok.After != "" {
		after = shardIndexForPaging(tok.After)
	}
	if tok.Filter == "AFTER_SHARD_ID" {
		after = max2(after, shardIndexForPaging(tok.Shard))
	}
	keep := h.shardFilter(&info, tok)
	out := listShardsOutput{Shards: []shardOut{}}
	for i := range info.Shards {
		si := &info.Shards[i]
		if si.Index <= after || !keep(si) {
			continue
		}
		if len(out.Shards) == max {
			tok.After = out.Shards[len(out.Shards)-1].ShardId
			t := h.sealToken(tokListShards, tok)
			out.NextToken = &t
			break
		}
		out.Shards = append(out.Shards, h.shardOut(si))
	}
	return out, nil
}

func max2(a, b int) int {
	if a > b {
		return a
	}
	return b
}

// shardFilter returns the predicate of a ShardFilter type: which shards
// were open at (AT_*) or at-or-after (FROM_*) a point in time.
func (h *Handler) shardFilter(info *streams.StreamInfo, tok pageToken) func(*streams.ShardInfo) bool {
	now := h.opts.Now()
	horizon := now.Add(-time.Duration(info.RetentionHours) * time.Hour)
	openAt := func(si *streams.ShardInfo, t time.Time) bool {
		if t.Before(info.Created) {
			t = info.Created
		}
		created := si.Created
		if created.Before(info.Created) {
			created = info.Created
		}
		return !created.After(t) && (si.Open || si.Closed.After(t))
	}
	openFrom := func(si *streams.ShardInfo, t time.Time) bool {
		return !si.Expired && (si.Open || si.Closed.After(t))
	}
	switch tok.Filter {
	case "AT_LATEST":
		return func(si *streams.ShardInfo) bool { return si.Open }
	case "AT_TRIM_HORIZON":
		return func(si *streams.ShardInfo) bool { return !si.Expired && openAt(si, horizon) }
	case "AT_TIMESTAMP":
		t := time.UnixMilli(tok.TS)
		return func(si *streams.ShardInfo) bool { return !si.Expired && openAt(si, t) }
	case "FROM_TIMESTAMP":
		t := time.UnixMilli(tok.TS)
		return func(si *streams.ShardInfo) bool { return openFrom(si, t) }
	}
	// FROM_TRIM_HORIZON, AFTER_SHARD_ID and no filter: every shard still in
	// retention.
	return func(si *streams.ShardInfo) bool { return !si.Expired }
}

func (h *Handler) splitShard(r *request) (any, error) {
	var in splitShardInput
	name, err := h.streamInput(r, &in, &in.streamRef, func(v *validator) {
		if v.required("shardToSplit", in.ShardToSplit != nil) {
			v.length("shardToSplit", in.ShardToSplit, 1, 128)
		}
		if v.required("newStartingHashKey", in.NewStartingHashKey != nil) {
			v.pattern("newStartingHashKey", in.NewStartingHashKey, validHashKey, "0|([1-9]\\d{0,38})")
		}
	})
	if err != nil {
		return nil, err
	}
	ids, err := h.shardIDs(name, in.ShardToSplit)
	if err != nil {
		return nil, err
	}
	info, err := h.activeStream(name)
	if err != nil {
		return nil, err
	}
	si, err := h.openShardInfo(&info, name, ids[0])
	if err != nil {
		return nil, err
	}
	hk, herr := streams.ParseHashKey(*in.NewStartingHashKey)
	if herr != nil || hk.Cmp(plusOne(si.Range.Start)) <= 0 || hk.Cmp(si.Range.End) >= 0 {
		return nil, newErr(excInvalidArgument, "NewStartingHashKey %s used in SplitShard() on shard %s in stream %s under account %s is not both greater than one plus the shard's StartingHashKey %s and less than the shard's EndingHashKey %s.",
			*in.NewStartingHashKey, si.ID, name, h.opts.AccountID, si.Range.Start, si.Range.End)
	}
	if err := h.checkShardLimit(1); err != nil {
		return nil, err
	}
	if err := h.store.SplitShard(name, si.ID, *in.NewStartingHashKey); err != nil {
		return nil, h.mapErr(name, err)
	}
	return empty{}, nil
}

// normShardID reads a shard ID as AWS does: the digits after the last
// hyphen (or the whole ID when it has none) are the shard's number, at
// most 2^31-1; "shardId-000000000001", "shardId-1" and "foo-1" all name
// shard 1, whose ID is returned as "shardId-000000000001".
func normShardID(raw string) (string, bool) {
	digits := raw
	if i := strings.LastIndexByte(raw, '-'); i >= 0 {
		digits = raw[i+1:]
	}
	if digits == "" {
		return "", false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return "", false
		}
	}
	n, err := strconv.ParseUint(digits, 10, 31)
	if err != nil {
		return "", false
	}
	return fmt.Sprintf("shardId-%012d", n), true
}

// shardIDs normalises the shard IDs of a request before its stream is
// looked up, as AWS does.
func (h *Handler) shardIDs(name string, raw ...*string) ([]string, error) {
	out := make([]string, len(raw))
	for i, r := range raw {
		id, ok := normShardID(*r)
		if !ok {
			return nil, newErr(excResourceNotFound, "Could not find shard %s in stream %s under account %s.", *r, name, h.opts.AccountID)
		}
		out[i] = id
	}
	return out, nil
}

func plusOne(k streams.HashKey) streams.HashKey {
	k.Lo++
	if k.Lo == 0 {
		k.Hi++
	}
	return k
}

// openShardInfo finds an open shard of a stream by ID.
func (h *Handler) openShardInfo(info *streams.StreamInfo, name, id string) (*streams.ShardInfo, error) {
	for i := range info.Shards {
		si := &info.Shards[i]
		if si.ID != id {
			continue
		}
		if !si.Open {
			return nil, newErr(excResourceInUse, "Shard %s in stream %s under account %s has already been merged or split, and thus is not eligible for merging or splitting.", id, name, h.opts.AccountID)
		}
		return si, nil
	}
	return nil, newErr(excResourceNotFound, "Could not find shard %s in stream %s under account %s.", id, name, h.opts.AccountID)
}

func (h *Handler) mergeShards(r *request) (any, error) {
	var in mergeShardsInput
	name, err := h.streamInput(r, &in, &in.streamRef, func(v *validator) {
		if v.required("shardToMerge", in.ShardToMerge != nil) {
			v.length("shardToMerge", in.ShardToMerge, 1, 128)
		}
		if v.required("adjacentShardToMerge", in.AdjacentShardToMerge != nil) {
			v.length("adjacentShardToMerge", in.AdjacentShardToMerge, 1, 128)
		}
	})
	if err != nil {
		return nil, err
	}
	ids, err := h.shardIDs(name, in.ShardToMerge, in.AdjacentShardToMerge)
	if err != nil {
		return nil, err
	}
	info, err := h.activeStream(name)
	if err != nil {
		return nil, err
	}
	a, err := h.openShardInfo(&info, name, ids[0])
	if err != nil {
		return nil, err
	}
	b, err := h.openShardInfo(&info, name, ids[1])
	if err != nil {
		return nil, err
	}
	if !adjacent(a.Range, b.Range) {
		return nil, newErr(excInvalidArgument, "Shards %s and %s in stream %s under account %s are not an adjacent pair of shards eligible for merging", a.ID, b.ID, name, h.opts.AccountID)
	}
	if err := h.store.MergeShards(name, a.ID, b.ID); err != nil {
		if isInvalid(err) {
			return nil, newErr(excInvalidArgument, "Shards %s and %s in stream %s under account %s are not an adjacent pair of shards eligible for merging", a.ID, b.ID, name, h.opts.AccountID)
		}
		return nil, h.mapErr(name, err)
	}
	return empty{}, nil
}

func (h *Handler) updateShardCount(r *request) (any, error) {
	var in updateShardCountInput
	if err := decode(r.codec, r.body, &in); err != nil {
		return nil, err
	}
	var v validator
	validateRef(&v, in.streamRef)
	if v.required("targetShardCount", in.TargetShardCount != nil) {
		v.rangeInt("targetShardCount", in.TargetShardCount, 1, 100000)
	}
	if v.required("scalingType", in.ScalingType != nil) {
		v.enum("scalingType", in.ScalingType, "UNIFORM_SCALING")
	}
	name, info, err := h.validActive(&v, in.streamRef)
	if err != nil {
		return nil, err
	}
	cur := 0
	for _, s := range info.Shards {
		if s.Open {
			cur++
		}
	}
	target := int(*in.TargetShardCount)
	if target > 2*cur || 2*target < cur {
		return nil, newErr(excLimitExceeded, "UpdateShardCount of stream %s under account %s cannot scale to %d shards from %d: a call may at most double or halve the open shards.", name, h.opts.AccountID, target, cur)
	}
	if target > streams.MaxShards {
		return nil, newErr(excLimitExceeded, "A stream of this server holds at most %d shards; requested %d.", streams.MaxShards, target)
	}
	if target > cur {
		if err := h.checkShardLimit(target - cur); err != nil {
			return nil, err
		}
	}
	if err := h.store.UpdateShardCount(name, target); err != nil {
		return nil, h.mapErr(name, err)
	}
	return updateShardCountOutput{StreamName: name, StreamARN: h.streamARN(name), CurrentShardCount: cur, TargetShardCount: target}, nil
}

// adjacent reports whether one range starts right after the other ends
// (the end of the key space does not wrap around to 0). Checked here so the
// client gets AWS's message whatever the store's wording.
func adjacent(a, b streams.HashRange) bool {
	follows := func(x, y streams.HashRange) bool {
		lo, c := bits.Add64(x.End.Lo, 1, 0)
		hi, over := bits.Add64(x.End.Hi, 0, c)
		return over == 0 && (streams.HashKey{Hi: hi, Lo: lo}) == y.Start
	}
	return follows(a, b) || follows(b, a)
}
