package kinesis

import (
	"encoding/json"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/runnel-dev/runnel/streams"
)

// Enhanced fan-out consumers live in a stream attribute as JSON. A new
// consumer reports CREATING for Options.CreateDelay, then ACTIVE;
// deregistering removes it at once.

const maxConsumersPerStream = 20

type consumerRec struct {
	Name    string            `json:"name"`
	Created int64             `json:"created"` // unix milliseconds
	Tags    map[string]string `json:"tags,omitempty"`
}

func consumersOf(info *streams.StreamInfo) []consumerRec {
	var cs []consumerRec
	if s := info.Attrs[attrConsumers]; s != "" {
		_ = json.Unmarshal([]byte(s), &cs)
	}
	return cs
}

func (h *Handler) consumerARN(stream string, c consumerRec) string {
	return h.streamARN(stream) + "/consumer/" + c.Name + ":" + strconv.FormatInt(c.Created/1000, 10)
}

func (h *Handler) consumerOut(stream string, c consumerRec, withStream bool) consumerOut {
	status := "ACTIVE"
	if h.opts.Now().Before(time.UnixMilli(c.Created).Add(h.opts.CreateDelay)) {
		status = "CREATING"
	}
	o := consumerOut{ConsumerName: c.Name, ConsumerARN: h.consumerARN(stream, c), ConsumerStatus: status,
		ConsumerCreationTimestamp: awsTime{time.UnixMilli(c.Created)}}
	if withStream {
		o.StreamARN = h.streamARN(stream)
	}
	return o
}

// parseConsumerARN splits "<stream ARN>/consumer/<name>:<created>".
func (h *Handler) parseConsumerARN(arn string) (stream, name string, created int64, ok bool) {
	i := strings.LastIndex(arn, "/consumer/")
	if i < 0 {
		return "", "", 0, false
	}
	stream, ok = h.parseStreamARN(arn[:i])
	rest := arn[i+len("/consumer/"):]
	j := strings.LastIndexByte(rest, ':')
	if !ok || j <= 0 {
		return "", "", 0, false
	}
	created, err := strconv.ParseInt(rest[j+1:], 10, 64)
	return stream, rest[:j], created, err == nil
}

func (h *Handler) consumerNotFound(arnOrName string) *apiError {
	return newErr(excResourceNotFound, "Consumer %s under account %s not found.", arnOrName, h.opts.AccountID)
}

// consumerInput decodes a request whose input is a consumerRef and finds
// the consumer it names.
func (h *Handler) consumerInput(r *request) (string, consumerRec, error) {
	var in consumerRef
	if err := decode(r.codec, r.body, &in); err != nil {
		return "", consumerRec{}, err
	}
	return h.findConsumer(in)
}

// findConsumer resolves ConsumerARN, or StreamARN and ConsumerName.
func (h *Handler) findConsumer(ref consumerRef) (string, consumerRec, error) {
	var v validator
	v.length("consumerARN", ref.ConsumerARN, 1, 2048)
	v.length("consumerName", ref.ConsumerName, 1, 128)
	v.pattern("consumerName", ref.ConsumerName, validStreamName, "[a-zA-Z0-9_.-]+")
	validateRef(&v, streamRef{StreamARN: ref.StreamARN})
	if err := v.err(); err != nil {
		return "", consumerRec{}, err
	}
	var stream, name string
	created := int64(-1)
	switch {
	case ref.ConsumerARN != nil:
		var ok bool
		stream, name, created, ok = h.parseConsumerARN(*ref.ConsumerARN)
		if !ok {
			return "", consumerRec{}, h.consumerNotFound(*ref.ConsumerARN)
		}
	case ref.StreamARN != nil && ref.ConsumerName != nil:
		var ok bool
		if stream, ok = h.parseStreamARN(*ref.StreamARN); !ok {
			return "", consumerRec{}, newErr(excResourceNotFound, "Stream %s not found.", *ref.StreamARN)
		}
		name = *ref.ConsumerName
	default:
		return "", consumerRec{}, newErr(excInvalidArgument, "Either ConsumerARN or both StreamARN and ConsumerName must be provided.")
	}
	info, err := h.describe(stream)
	if err != nil {
		return "", consumerRec{}, err
	}
	for _, c := range consumersOf(&info) {
		if c.Name == name && (created < 0 || c.Created/1000 == created) {
			return stream, c, nil
		}
	}
	if ref.ConsumerARN != nil {
		return "", consumerRec{}, h.consumerNotFound(*ref.ConsumerARN)
	}
	return "", consumerRec{}, h.consumerNotFound(name)
}

// editConsumers applies fn to a stream's consumer list atomically.
func (h *Handler) editConsumers(stream string, fn func([]consumerRec) ([]consumerRec, error)) error {
	h.consumerMu.Lock()
	defer h.consumerMu.Unlock()
	return h.setAttrs(stream, func(a map[string]string) error {
		var cs []consumerRec
		if s := a[attrConsumers]; s != "" {
			_ = json.Unmarshal([]byte(s), &cs)
		}
		cs, err := fn(cs)
		if err != nil {
			return err
		}
		// A consumer's resource policy goes with it: a new consumer of
		// the name is another resource.
		for k := range a {
			if name, ok := strings.CutPrefix(k, attrPolicy+".consumer."); ok && !slices.ContainsFunc(cs, func(c consumerRec) bool { return c.Name == name }) {
				delete(a, k)
			}
		}
		if len(cs) == 0 {
			delete(a, attrConsumers)
			return nil
		}
		b, _ := json.Marshal(cs)
		a[attrConsumers] = string(b)
		return nil
	})
}

func (h *Handler) registerConsumer(r *request) (any, error) {
	var in registerConsumerInput
	err := input(r, &in, func(v *validator) {
		if v.required("streamARN", in.StreamARN != nil) {
			validateRef(v, streamRef{StreamARN: in.StreamARN})
		}
		if v.required("consumerName", in.ConsumerName != nil) {
			v.length("consumerName", in.ConsumerName, 1, 128)
			v.pattern("consumerName", in.ConsumerName, validStreamName, "[a-zA-Z0-9_.-]+")
		}
		if in.Tags != nil {
			validateTags(v, in.Tags, "tags", maxTagsPerStream)
		}
	})
	if err != nil {
		return nil, err
	}
	stream, err := h.resolveValid(streamRef{StreamARN: in.StreamARN})
	if err != nil {
		return nil, err
	}
	info, err := h.describe(stream)
	if err != nil {
		return nil, err
	}
	if info.Status == streams.StatusCreating {
		return nil, h.notActive(stream, info.Status)
	}
	rec := consumerRec{Name: *in.ConsumerName, Created: h.opts.Now().UnixMilli(), Tags: in.Tags}
	err = h.editConsumers(stream, func(cs []consumerRec) ([]consumerRec, error) {
		for _, c := range cs {
			if c.Name == rec.Name {
				return nil, newErr(excResourceInUse, "Consumer %s under stream %s already exists for account %s.", rec.Name, stream, h.opts.AccountID)
			}
		}
		if len(cs) >= maxConsumersPerStream {
			return nil, newErr(excLimitExceeded, "Stream %s under account %s already has %d registered consumers, the maximum.", stream, h.opts.AccountID, maxConsumersPerStream)
		}
		return append(cs, rec), nil
	})
	if err != nil {
		return nil, err
	}
	return registerConsumerOutput{h.consumerOut(stream, rec, false)}, nil
}

func (h *Handler) deregisterConsumer(r *request) (any, error) {
	stream, c, err := h.consumerInput(r)
	if err != nil {
		return nil, err
	}
	err = h.editConsumers(stream, func(cs []consumerRec) ([]consumerRec, error) {
		out := cs[:0]
		for _, x := range cs {
			if x.Name != c.Name {
				out = append(out, x)
			}
		}
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	h.endSubscriptionsOf(h.consumerARN(stream, c))
	return empty{}, nil
}

func (h *Handler) describeConsumer(r *request) (any, error) {
	stream, c, err := h.consumerInput(r)
	if err != nil {
		return nil, err
	}
	return describeConsumerOutput{h.consumerOut(stream, c, true)}, nil
}

func (h *Handler) listConsumers(r *request) (any, error) {
	var in listConsumersInput
	err := input(r, &in, func(v *validator) {
		if v.required("streamARN", in.StreamARN != nil) {
			validateRef(v, streamRef{StreamARN: in.StreamARN})
		}
		v.rangeInt("maxResults", in.MaxResults, 1, 10000)
		v.length("nextToken", in.NextToken, 1, 1048576)
	})
	if err != nil {
		return nil, err
	}
	stream, err := h.resolveValid(streamRef{StreamARN: in.StreamARN})
	if err != nil {
		return nil, err
	}
	max := 100
	if in.MaxResults != nil {
		max = int(*in.MaxResults)
	}
	after := ""
	if in.NextToken != nil {
		var tok pageToken
		if err := h.openToken(tokListConsumers, *in.NextToken, &tok); err != nil {
			return nil, err
		}
		if tok.Stream != stream {
			return nil, newErr(excInvalidArgument, "Invalid NextToken.")
		}
		after = tok.After
	}
	info, err := h.describe(stream)
	if err != nil {
		return nil, err
	}
	if in.StreamCreationTimestamp != nil && in.StreamCreationTimestamp.UnixMilli() != info.Created.UnixMilli() {
		return nil, h.notFound(stream)
	}
	cs := consumersOf(&info)
	sort.Slice(cs, func(i, j int) bool { return cs[i].Name < cs[j].Name })
	out := listConsumersOutput{Consumers: []consumerOut{}}
	for _, c := range cs {
		if after != "" && c.Name <= after {
			continue
		}
		if len(out.Consumers) == max {
			t := h.sealToken(tokListConsumers, pageToken{Stream: stream, After: out.Consumers[len(out.Consumers)-1].ConsumerName})
			out.NextToken = &t
			break
		}
		out.Consumers = append(out.Consumers, h.consumerOut(stream, c, false))
	}
	return out, nil
}

// Tagging by ARN: streams and consumers.

func (h *Handler) tagsTarget(arn *string) (stream, consumer string, err error) {
	var v validator
	if v.required("resourceARN", arn != nil) {
		v.length("resourceARN", arn, 1, 2048)
	}
	if err := v.err(); err != nil {
		return "", "", err
	}
	if _, _, _, ok := h.parseConsumerARN(*arn); ok {
		s, c, err := h.findConsumer(consumerRef{ConsumerARN: arn})
		return s, c.Name, err
	}
	s, ok := h.parseStreamARN(*arn)
	if !ok {
		return "", "", newErr(excResourceNotFound, "Resource %s not found.", *arn)
	}
	return s, "", nil
}

func (h *Handler) editConsumerTags(stream, consumer string, fn func(map[string]string) error) error {
	return h.editConsumers(stream, func(cs []consumerRec) ([]consumerRec, error) {
		for i := range cs {
			if cs[i].Name == consumer {
				if cs[i].Tags == nil {
					cs[i].Tags = map[string]string{}
				}
				if err := fn(cs[i].Tags); err != nil {
					return nil, err
				}
			}
		}
		return cs, nil
	})
}

func (h *Handler) tagResource(r *request) (any, error) {
	var in tagResourceInput
	err := input(r, &in, func(v *validator) {
		if v.required("tags", in.Tags != nil) {
			validateTags(v, in.Tags, "tags", maxTagsPerStream)
		}
	})
	if err != nil {
		return nil, err
	}
	return h.retag(in.ResourceARN, func(stream string) error { return h.addTags(stream, in.Tags) },
		func(t map[string]string) error {
			if err := checkTagChars(in.Tags); err != nil {
				return err
			}
			for k, val := range in.Tags {
				t[k] = val
			}
			if len(t) > maxTagsPerStream {
				return newErr(excInvalidArgument, "A consumer cannot have more than %d tags associated with it.", maxTagsPerStream)
			}
			return nil
		})
}

func (h *Handler) untagResource(r *request) (any, error) {
	var in untagResourceInput
	err := input(r, &in, func(v *validator) {
		validateTagKeys(v, in.TagKeys, in.TagKeys != nil)
	})
	if err != nil {
		return nil, err
	}
	return h.retag(in.ResourceARN, func(stream string) error { return h.removeTags(stream, in.TagKeys) },
		func(t map[string]string) error {
			for _, k := range in.TagKeys {
				delete(t, k)
			}
			return nil
		})
}

// retag answers a TagResource or UntagResource on what arn names: onStream
// changes a stream's tags, edit a consumer's (an error of edit leaves them
// as they were).
func (h *Handler) retag(arn *string, onStream func(stream string) error, edit func(tags map[string]string) error) (any, error) {
	stream, consumer, err := h.tagsTarget(arn)
	if err != nil {
		return nil, err
	}
	if consumer == "" {
		return empty{}, onStream(stream)
	}
	return empty{}, h.editConsumerTags(stream, consumer, edit)
}

func (h *Handler) listTagsForResource(r *request) (any, error) {
	var in listTagsForResourceInput
	if err := decode(r.codec, r.body, &in); err != nil {
		return nil, err
	}
	stream, consumer, err := h.tagsTarget(in.ResourceARN)
	if err != nil {
		return nil, err
	}
	info, err := h.describe(stream)
	if err != nil {
		return nil, err
	}
	if consumer == "" {
		return listTagsForResourceOutput{sortedTags(info.Tags)}, nil
	}
	for _, c := range consumersOf(&info) {
		if c.Name == consumer {
			return listTagsForResourceOutput{sortedTags(c.Tags)}, nil
		}
	}
	return nil, h.consumerNotFound(*in.ResourceARN)
}
