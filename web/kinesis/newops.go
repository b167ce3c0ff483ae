package kinesis

import (
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runnel-dev/runnel/internal/atomicfile"
	"github.com/runnel-dev/runnel/streams"
)

// Stream attributes of the newer operations.
const (
	attrPolicy       = "kinesis.policy"
	attrMaxRecordKiB = "kinesis.max_record_kib"
	attrWarmMiBps    = "kinesis.warm_mibps"
	attrDistribution = "kinesis.distribution"

	defaultMaxRecordKiB = 1024
	distributionAuto    = "AUTO"
)

// ---- resource policies ----

type resourcePolicyInput struct {
	ResourceARN *string `json:"ResourceARN"`
	Policy      *string `json:"Policy"`
}

type getResourcePolicyOutput struct {
	Policy string `json:"Policy"`
}

// policyTarget resolves a ResourceARN (a stream's or a consumer's) to the
// stream that holds its policy and the attribute name it is kept under.
func (h *Handler) policyTarget(arn string) (stream, attr string, err error) {
	s, consumer, err := h.tagsTarget(&arn)
	if err != nil {
		return "", "", err
	}
	if _, err := h.describe(s); err != nil {
		return "", "", err
	}
	if consumer == "" {
		return s, attrPolicy, nil
	}
	return s, attrPolicy + ".consumer." + consumer, nil
}

func (h *Handler) putResourcePolicy(r *request) (any, error) {
	var in resourcePolicyInput
	if err := decode(r.codec, r.body, &in); err != nil {
		return nil, err
	}
	if _, err := parsePolicy(*in.Policy, true); err != nil {
		return nil, newErr(excInvalidArgument, "%s", err.Error())
	}
	s, attr, err := h.policyTarget(*in.ResourceARN)
	if err != nil {
		return nil, err
	}
	defer h.forget(s)
	return empty{}, h.mapErrOrNil(s, h.store.UpdateStream(s, func(u *streams.StreamUpdate) error {
		u.Attrs[attr] = *in.Policy
		return nil
	}))
}

// storedPolicy decodes a request naming a resource and returns the
// resource's ARN, the stream that holds its policy, the attribute the
// policy is kept under, and the policy ("" when it has none).
func (h *Handler) storedPolicy(r *request) (arn, stream, attr, policy string, err error) {
	var in resourcePolicyInput
	if err := decode(r.codec, r.body, &in); err != nil {
		return "", "", "", "", err
	}
	stream, attr, err = h.policyTarget(*in.ResourceARN)
	if err != nil {
		return "", "", "", "", err
	}
	info, err := h.describe(stream)
	if err != nil {
		return "", "", "", "", err
	}
	return *in.ResourceARN, stream, attr, info.Attrs[attr], nil
}

func (h *Handler) getResourcePolicy(r *request) (any, error) {
	_, _, _, p, err := h.storedPolicy(r)
	if err != nil {
		return nil, err
	}
	// AWS answers "{}" for a resource without a policy.
	if p == "" {
		p = "{}"
	}
	return getResourcePolicyOutput{Policy: p}, nil
}

func (h *Handler) deleteResourcePolicy(r *request) (any, error) {
	arn, s, attr, p, err := h.storedPolicy(r)
	if err != nil {
		return nil, err
	}
	if p == "" {
		return nil, newErr(excResourceNotFound, "No resource policy found for resource ARN %s.", arn)
	}
	defer h.forget(s)
	return empty{}, h.mapErrOrNil(s, h.store.UpdateStream(s, func(u *streams.StreamUpdate) error {
		delete(u.Attrs, attr)
		return nil
	}))
}

// ---- account settings ----

type billingCommitmentOut struct {
	Status               string   `json:"Status"`
	StartedAt            *awsTime `json:"StartedAt,omitempty"`
	EndedAt              *awsTime `json:"EndedAt,omitempty"`
	EarliestAllowedEndAt *awsTime `json:"EarliestAllowedEndAt,omitempty"`
}

type accountSettingsOutput struct {
	MinimumThroughputBillingCommitment billingCommitmentOut `json:"MinimumThroughputBillingCommitment"`
}

type updateAccountSettingsInput struct {
	MinimumThroughputBillingCommitment *struct {
		Status *string `json:"Status"`
	} `json:"MinimumThroughputBillingCommitment"`
}

// commitmentTerm is how long a minimum throughput billing commitment must
// run before it can end.
const commitmentTerm = 24 * time.Hour

// accountSettings is the account's state of the settings operations,
// kept in Options.AccountSettingsFile.
type accountSettings struct {
	Status    string `json:"status"`
	StartedAt int64  `json:"started_at,omitempty"` // unix milliseconds
	EndedAt   int64  `json:"ended_at,omitempty"`
}

type accountStore struct {
	mu   sync.Mutex
	path string
	s    accountSettings
}

func (a *accountStore) load() error {
	a.s = accountSettings{Status: "DISABLED"}
	if a.path == "" {
		return nil
	}
	b, err := os.ReadFile(a.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return json.Unmarshal(b, &a.s)
}

func (a *accountStore) save() error {
	if a.path == "" {
		return nil
	}
	b, _ := json.Marshal(a.s)
	return atomicfile.Write(a.path, b, 0o600)
}

func (h *Handler) accountOut(now time.Time) accountSettingsOutput {
	s := h.account.s
	out := billingCommitmentOut{Status: s.Status}
	if s.StartedAt != 0 {
		st := awsTime{time.UnixMilli(s.StartedAt)}
		end := awsTime{st.Add(commitmentTerm)}
		out.StartedAt, out.EarliestAllowedEndAt = &st, &end
	}
	if s.EndedAt != 0 {
		e := awsTime{time.UnixMilli(s.EndedAt)}
		out.EndedAt = &e
		if s.Status == "ENABLED_UNTIL_EARLIEST_ALLOWED_END" && !now.Before(e.Time) {
			out.Status = "DISABLED"
		}
	}
	return accountSettingsOutput{out}
}

func (h *Handler) describeAccountSettings(r *request) (any, error) {
	h.account.mu.Lock()
	defer h.account.mu.Unlock()
	return h.accountOut(h.opts.Now()), nil
}

func (h *Handler) updateAccountSettings(r *request) (any, error) {
	var in updateAccountSettingsInput
	if err := decode(r.codec, r.body, &in); err != nil {
		return nil, err
	}
	now := h.opts.Now()
	h.account.mu.Lock()
	defer h.account.mu.Unlock()
	cur := h.accountOut(now).MinimumThroughputBillingCommitment.Status
	switch want := *in.MinimumThroughputBillingCommitment.Status; {
	case want == "ENABLED" && cur != "ENABLED":
		h.account.s = accountSettings{Status: "ENABLED", StartedAt: now.UnixMilli()}
	case want == "DISABLED" && cur == "ENABLED":
		start := time.UnixMilli(h.account.s.StartedAt)
		if end := start.Add(commitmentTerm); now.Before(end) {
			// AWS keeps the commitment to its earliest end.
			h.account.s.Status, h.account.s.EndedAt = "ENABLED_UNTIL_EARLIEST_ALLOWED_END", end.UnixMilli()
		} else {
			h.account.s.Status, h.account.s.EndedAt = "DISABLED", now.UnixMilli()
		}
	}
	if err := h.account.save(); err != nil {
		return nil, internalErr(err)
	}
	return h.accountOut(now), nil
}

// ---- per-stream settings ----

type streamSettingInput struct {
	streamRef
	MaxRecordSizeInKiB         *int64  `json:"MaxRecordSizeInKiB"`
	WarmThroughputMiBps        *int64  `json:"WarmThroughputMiBps"`
	RecordDistributionStrategy *string `json:"RecordDistributionStrategy"`
}

type warmThroughputOut struct {
	TargetMiBps  *int64 `json:"TargetMiBps,omitempty"`
	CurrentMiBps *int64 `json:"CurrentMiBps,omitempty"`
}

type updateWarmThroughputOutput struct {
	StreamARN      string            `json:"StreamARN"`
	StreamName     string            `json:"StreamName"`
	WarmThroughput warmThroughputOut `json:"WarmThroughput"`
}

// setStreamAttr resolves the stream of a settings request, checks it is
// ACTIVE and sets one attribute.
func (h *Handler) setStreamAttr(in *streamSettingInput, attr, val string) (string, error) {
	name, err := h.resolveValid(in.streamRef)
	if err != nil {
		return "", err
	}
	if _, err := h.activeStream(name); err != nil {
		return "", err
	}
	err = h.store.UpdateStream(name, func(u *streams.StreamUpdate) error {
		u.Attrs[attr] = val
		return nil
	})
	h.forget(name)
	return name, h.mapErrOrNil(name, err)
}

func (h *Handler) updateMaxRecordSize(r *request) (any, error) {
	var in streamSettingInput
	if err := decode(r.codec, r.body, &in); err != nil {
		return nil, err
	}
	if in.StreamARN == nil {
		return nil, newErr(excInvalidArgument, "StreamARN is required.")
	}
	kib := *in.MaxRecordSizeInKiB
	h.raiseRecordCap(int(kib))
	if _, err := h.setStreamAttr(&in, attrMaxRecordKiB, strconv.FormatInt(kib, 10)); err != nil {
		return nil, err
	}
	return empty{}, nil
}

func (h *Handler) updateStreamWarmThroughput(r *request) (any, error) {
	var in streamSettingInput
	if err := decode(r.codec, r.body, &in); err != nil {
		return nil, err
	}
	mibps := *in.WarmThroughputMiBps
	name, err := h.setStreamAttr(&in, attrWarmMiBps, strconv.FormatInt(mibps, 10))
	if err != nil {
		return nil, err
	}
	// Runnel's shards take what the disk takes, with no warm-up: the
	// target is reached at once.
	return updateWarmThroughputOutput{StreamARN: h.streamARN(name), StreamName: name,
		WarmThroughput: warmThroughputOut{TargetMiBps: &mibps, CurrentMiBps: &mibps}}, nil
}

func (h *Handler) updateRecordDistribution(r *request) (any, error) {
	var in streamSettingInput
	if err := decode(r.codec, r.body, &in); err != nil {
		return nil, err
	}
	if in.StreamARN == nil {
		return nil, newErr(excInvalidArgument, "StreamARN is required.")
	}
	if _, err := h.setStreamAttr(&in, attrDistribution, *in.RecordDistributionStrategy); err != nil {
		return nil, err
	}
	return empty{}, nil
}

// warmOf is a stream's warm throughput, when one was set.
func warmOf(info *streams.StreamInfo) *warmThroughputOut {
	n, err := strconv.ParseInt(info.Attrs[attrWarmMiBps], 10, 64)
	if err != nil {
		return nil
	}
	return &warmThroughputOut{TargetMiBps: &n, CurrentMiBps: &n}
}

// MaxRecordBytes is the largest record data a put to the stream may carry:
// 1 MiB unless UpdateMaxRecordSize raised it (the REST put enforces it too).
func MaxRecordBytes(info *streams.StreamInfo) int {
	if n, err := strconv.Atoi(info.Attrs[attrMaxRecordKiB]); err == nil && n > 0 {
		return n << 10
	}
	return defaultMaxRecordKiB << 10
}

// recordCap is the largest maximum record size of any stream: requests
// are validated against it before their stream is known (AWS's classic
// 1 MiB unless a stream was given more), each put then against its own
// stream's maximum.
type recordCap struct {
	once sync.Once
	kib  atomic.Int64
}

func (h *Handler) recordCapBytes() int {
	h.rcap.once.Do(func() {
		h.rcap.kib.Store(defaultMaxRecordKiB)
		for _, s := range h.store.ListStreams() {
			h.raiseRecordCap(MaxRecordBytes(&s) >> 10)
		}
	})
	return int(h.rcap.kib.Load()) << 10
}

func (h *Handler) raiseRecordCap(kib int) {
	for {
		cur := h.rcap.kib.Load()
		if int64(kib) <= cur || h.rcap.kib.CompareAndSwap(cur, int64(kib)) {
			return
		}
	}
}

// ---- channels ----

type listChannelsOutput struct {
	ChannelSummaries []struct{} `json:"ChannelSummaries"`
}

// errChannels answers the channel operations of a handler without
// channels: a channel is a delivery job, which needs a job manager
// (EnableChannels; runnel serve gives it one).
func (h *Handler) errChannels(op string) error {
	return newErr(excInvalidArgument, "%s: channels (delivery of a stream to Amazon S3) are not available on this server: they run as jobs, and it has no job manager.", op)
}

func (h *Handler) createChannel(r *request) (any, error) { return nil, h.errChannels("CreateChannel") }

func (h *Handler) channelNotFound(r *request) (any, error) {
	var in struct {
		ChannelARN *string `json:"ChannelARN"`
	}
	if err := decode(r.codec, r.body, &in); err != nil {
		return nil, err
	}
	// The model check has refused a request without a ChannelARN.
	return nil, newErr(excResourceNotFound, "Channel %s not found: channels are not available on this server (it has no job manager to run them).", *in.ChannelARN)
}

func (h *Handler) listChannels(r *request) (any, error) {
	// There are no channels, so the list is empty (and honest).
	return listChannelsOutput{ChannelSummaries: []struct{}{}}, nil
}
