package kinesis

// Channels deliver a stream to an S3 bucket. Each channel is a managed
// delivery job, "channel-NAME", run by the server's job manager: the
// stream as its source, the S3 sink (exactly once, JSON lines, gzip'd on
// request) as its sink, a checkpoint every DataFreshnessInSeconds. The
// channel's state is the job's: CREATING (and UPDATING) for the create
// delay, then ACTIVE while the job runs and FAILED, with the job's reason,
// when it does not. A delivery job that fails (S3 unreachable) restarts by
// its restart strategy (channelRestart), and the channel stays ACTIVE
// meanwhile, the failure as its reason; it is FAILED once the attempts are
// used up. Channels are kept in a file beside the streams; the jobs
// themselves are kept and restarted by the job manager, and a delivery
// job found failed at the server's start restarts by its strategy too.
//
// The delivery job is owned by its channel: the job manager's Owner is
// the channel's ARN, so no job submitted by a user replaces it and only
// the channel deletes it or deploys over it. CreateChannel never replaces
// a job: a job of the name that is not a delivery job left by a channel
// of that name makes it answer ResourceInUseException. DeleteChannel
// deletes the job; UpdateChannel deploys the new file over it from where
// it stopped, which also starts a failed or stopped delivery job again. A
// stream that channels read is not deleted (ResourceInUseException, as on
// AWS); one deleted otherwise (the REST API) leaves its channels FAILED,
// naming it, and they are not started again on a new stream of its name.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/runnel-dev/runnel/internal/atomicfile"
	"github.com/runnel-dev/runnel/jobs"
)

// ChannelOptions turn channels on for a handler (EnableChannels).
type ChannelOptions struct {
	// Jobs runs the delivery jobs.
	Jobs *jobs.Manager
	// File keeps the channels across restarts.
	File string
	// S3Endpoint is where delivery jobs reach S3 (empty: AWS); the other
	// fields as the s3 sink's endpoint, region, profile and path_style.
	// Credentials come from the server's AWS default chain or S3Profile.
	S3Endpoint, S3Region, S3Profile string
	S3PathStyle                     bool
	// Restart is the delivery jobs' restart strategy when its Strategy
	// is set (tests); channelRestart otherwise.
	Restart jobs.Restart
}

// channelSets holds the channels of each handler that has them.
var channelSets sync.Map // *Handler → *channelSet

type channelSet struct {
	opts ChannelOptions
	mu   sync.Mutex
	recs map[string]*channelRec // by name
}

// channelRec is one channel as stored: what CreateChannel was given.
type channelRec struct {
	Name          string            `json:"name"`
	ID            string            `json:"id"`
	Created       time.Time         `json:"created"`
	Updated       time.Time         `json:"updated,omitzero"`
	Role          string            `json:"role"`
	Stream        string            `json:"stream"`
	StreamCreated time.Time         `json:"stream_created"`
	RecordFormat  string            `json:"record_format"`
	S3            s3Destination     `json:"s3"`
	Tags          map[string]string `json:"tags,omitempty"`
	// JobOwner is the delivery job's owner: the channel's ARN ("" for a
	// channel made before delivery jobs had owners).
	JobOwner string `json:"job_owner,omitempty"`
}

type s3Storage struct {
	BucketARN           *string `json:"BucketARN"`
	CompressionType     *string `json:"CompressionType"`
	ExpectedBucketOwner *string `json:"ExpectedBucketOwner"`
	OutputKeyTemplate   *string `json:"OutputKeyTemplate,omitempty"`
	StorageClass        *string `json:"StorageClass,omitempty"`
}

type s3DLQ struct {
	BucketARN           *string `json:"BucketARN"`
	ExpectedBucketOwner *string `json:"ExpectedBucketOwner"`
	ErrorOutputPrefix   *string `json:"ErrorOutputPrefix,omitempty"`
}

type s3Destination struct {
	StorageConfiguration           *s3Storage `json:"StorageConfiguration"`
	DataFreshnessInSeconds         *int32     `json:"DataFreshnessInSeconds,omitempty"`
	DeadLetterQueueS3Configuration *s3DLQ     `json:"DeadLetterQueueS3Configuration,omitempty"`
}

type recordConfiguration struct {
	RecordFormatType *string `json:"RecordFormatType"`
	GSRSchemaARN     *string `json:"GSRSchemaARN,omitempty"`
}

type channelStreamDescription struct {
	RecordConfiguration     recordConfiguration `json:"RecordConfiguration"`
	StreamARN               string              `json:"StreamARN"`
	StreamCreationTimestamp awsTime             `json:"StreamCreationTimestamp"`
}

type channelDescription struct {
	ChannelARN                 string                     `json:"ChannelARN"`
	ChannelCreationTimestamp   awsTime                    `json:"ChannelCreationTimestamp"`
	ChannelId                  string                     `json:"ChannelId"`
	ChannelName                string                     `json:"ChannelName"`
	ChannelStatus              string                     `json:"ChannelStatus"`
	ChannelStatusReason        string                     `json:"ChannelStatusReason,omitempty"`
	ServiceExecutionRoleARN    string                     `json:"ServiceExecutionRoleARN"`
	StreamConfigurationList    []channelStreamDescription `json:"StreamConfigurationList"`
	S3DestinationConfiguration *s3Destination             `json:"S3DestinationConfiguration,omitempty"`
}

type channelOutput struct {
	ChannelDescription channelDescription `json:"ChannelDescription"`
}

// DefaultDataFreshness is a channel's delivery interval when
// CreateChannel names none.
const DefaultDataFreshness = 60

// EnableChannels turns channels on for h, a handler from New, and loads
// the channels kept in o.File.
func EnableChannels(h http.Handler, o ChannelOptions) error {
	hd, ok := h.(*Handler)
	if !ok {
		return fmt.Errorf("kinesis: EnableChannels needs the handler New returned, not a %T", h)
	}
	cs := &channelSet{opts: o, recs: map[string]*channelRec{}}
	if b, err := os.ReadFile(o.File); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("kinesis: channels: %w", err)
	} else if err == nil {
		var recs []*channelRec
		if err := json.Unmarshal(b, &recs); err != nil {
			return fmt.Errorf("kinesis: channels file %s: %w", o.File, err)
		}
		for _, r := range recs {
			cs.recs[r.Name] = r
		}
	}
	channelSets.Store(hd, cs)
	if o.Jobs != nil {
		o.Jobs.GuardRestarts(hd.channelRestartGuard)
		cs.mu.Lock()
		for _, r := range cs.recs {
			hd.heal(cs, r)
		}
		cs.mu.Unlock()
	}
	return nil
}

// channelSet returns h's channels; nil when they are not enabled, and
// the operations answer as a server without channels.
func (h *Handler) channelSet() *channelSet {
	if cs, ok := channelSets.Load(h); ok {
		return cs.(*channelSet)
	}
	return nil
}

// save writes the channels to the file; the caller holds cs.mu.
func (cs *channelSet) save() error {
	if cs.opts.File == "" {
		return nil
	}
	recs := slices.SortedFunc(func(yield func(*channelRec) bool) {
		for _, r := range cs.recs {
			if !yield(r) {
				return
			}
		}
	}, func(a, b *channelRec) int { return strings.Compare(a.Name, b.Name) })
	b, err := json.Marshal(recs)
	if err != nil {
		return err
	}
	return atomicfile.Write(cs.opts.File, b, 0o600)
}

func (h *Handler) channelARN(name string) string {
	return "arn:aws:kinesis:" + h.opts.Region + ":" + h.opts.AccountID + ":channel/" + name
}

func channelJob(name string) string { return "channel-" + name }

func validChannelName(s string) bool { return s != "" && len(s) <= 128 && validStreamName(s) }

// bucketOf returns the bucket an S3 bucket ARN names.
func bucketOf(arn *string) (string, bool) {
	if arn == nil {
		return "", false
	}
	b, ok := strings.CutPrefix(*arn, "arn:aws:s3:::")
	return b, ok && b != "" && !strings.ContainsAny(b, "/ ")
}

// jobFile is the delivery job of a channel.
func (cs *channelSet) jobFile(r *channelRec) ([]byte, error) {
	st := r.S3.StorageConfiguration
	bucket, _ := bucketOf(st.BucketARN)
	format := "jsonl"
	switch *st.CompressionType {
	case "GZIP":
		format = "jsonl.gz"
	case "NONE":
	default:
		return nil, newErr(excInvalidArgument, "CompressionType %s is not supported by Runnel's channels: use NONE or GZIP.", *st.CompressionType)
	}
	srcFormat := map[string]string{"JSON": "json", "STRING": "text", "BYTE_ARRAY": "bytes"}[*recordFormatOf(r)]
	fresh := int32(DefaultDataFreshness)
	if f := r.S3.DataFreshnessInSeconds; f != nil {
		fresh = *f
	}
	s3 := map[string]any{"bucket": bucket, "format": format, "time": "arrival",
		"buffer_interval": fmt.Sprintf("%ds", fresh), "path_style": cs.opts.S3PathStyle}
	for k, v := range map[string]string{"endpoint": cs.opts.S3Endpoint, "region": cs.opts.S3Region, "profile": cs.opts.S3Profile} {
		if v != "" {
			s3[k] = v
		}
	}
	if t := st.OutputKeyTemplate; t != nil && *t != "" {
		s3["partition"] = *t
	}
	if d := r.S3.DeadLetterQueueS3Configuration; d != nil && d.ErrorOutputPrefix != nil && *d.ErrorOutputPrefix != "" {
		s3["error_prefix"] = *d.ErrorOutputPrefix
	}
	spec := map[string]any{
		"name":       channelJob(r.Name),
		"source":     map[string]any{"stream": r.Stream, "format": srcFormat},
		"sinks":      []any{map[string]any{"id": "s3", "s3": s3}},
		"checkpoint": map[string]any{"every": fmt.Sprintf("%ds", max(fresh, 1))},
		"restart":    cs.restart(),
	}
	return json.Marshal(spec) // JSON is YAML
}

func recordFormatOf(r *channelRec) *string { return &r.RecordFormat }

// describe renders a channel with its state.
func (h *Handler) describeChannelRec(cs *channelSet, r *channelRec) channelDescription {
	d := channelDescription{ChannelARN: h.channelARN(r.Name), ChannelCreationTimestamp: awsTime{r.Created}, ChannelId: r.ID,
		ChannelName: r.Name, ServiceExecutionRoleARN: r.Role, S3DestinationConfiguration: &r.S3,
		StreamConfigurationList: []channelStreamDescription{{RecordConfiguration: recordConfiguration{RecordFormatType: &r.RecordFormat},
			StreamARN: h.streamARN(r.Stream), StreamCreationTimestamp: awsTime{r.StreamCreated}}}}
	now := h.opts.Now()
	switch {
	case now.Sub(r.Created) < h.opts.CreateDelay:
		d.ChannelStatus = "CREATING"
	case !r.Updated.IsZero() && now.Sub(r.Updated) < h.opts.CreateDelay:
		d.ChannelStatus = "UPDATING"
	default:
		d.ChannelStatus = "ACTIVE"
		reason, failed := h.channelFault(cs, r)
		d.ChannelStatusReason = reason // ACTIVE: the delivery job waits to restart
		if failed {
			d.ChannelStatus = "FAILED"
		}
	}
	return d
}

type createChannelInput struct {
	ChannelName             *string `json:"ChannelName"`
	ServiceExecutionRoleARN *string `json:"ServiceExecutionRoleARN"`
	StreamConfigurationList []struct {
		RecordConfiguration *recordConfiguration `json:"RecordConfiguration"`
		StreamARN           *string              `json:"StreamARN"`
	} `json:"StreamConfigurationList"`
	S3DestinationConfiguration       *s3Destination    `json:"S3DestinationConfiguration"`
	S3TablesDestinationConfiguration json.RawMessage   `json:"S3TablesDestinationConfiguration"`
	EncryptionConfiguration          json.RawMessage   `json:"EncryptionConfiguration"`
	Tags                             map[string]string `json:"Tags"`
}

func (h *Handler) createDeliveryChannel(r *request) (any, error) {
	cs := h.channelSet()
	if cs == nil {
		return h.createChannel(r)
	}
	var in createChannelInput
	if err := decode(r.codec, r.body, &in); err != nil {
		return nil, err
	}
	switch {
	case in.ChannelName == nil || !validChannelName(*in.ChannelName):
		return nil, newErr(excValidation, "1 validation error detected: Value at 'channelName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+ and have length between 1 and 128")
	case in.ServiceExecutionRoleARN == nil || *in.ServiceExecutionRoleARN == "":
		return nil, newErr(excValidation, "1 validation error detected: Value null at 'serviceExecutionRoleARN' failed to satisfy constraint: Member must not be null")
	case len(in.StreamConfigurationList) != 1:
		return nil, newErr(excInvalidArgument, "StreamConfigurationList must name exactly one stream.")
	case len(in.S3TablesDestinationConfiguration) > 0 && string(in.S3TablesDestinationConfiguration) != "null":
		return nil, newErr(excInvalidArgument, "S3TablesDestinationConfiguration: Runnel's channels deliver to general purpose buckets only; give S3DestinationConfiguration.")
	case len(in.EncryptionConfiguration) > 0 && string(in.EncryptionConfiguration) != "null":
		return nil, newErr(excInvalidArgument, "EncryptionConfiguration: Runnel has no KMS; leave it out (the bucket's own default encryption applies).")
	case in.S3DestinationConfiguration == nil || in.S3DestinationConfiguration.StorageConfiguration == nil:
		return nil, newErr(excInvalidArgument, "S3DestinationConfiguration.StorageConfiguration is required.")
	}
	sc := in.StreamConfigurationList[0]
	dest := in.S3DestinationConfiguration
	st := dest.StorageConfiguration
	if _, ok := bucketOf(st.BucketARN); !ok {
		return nil, newErr(excInvalidArgument, "StorageConfiguration.BucketARN must be a bucket ARN, arn:aws:s3:::BUCKET.")
	}
	if st.CompressionType == nil || st.ExpectedBucketOwner == nil {
		return nil, newErr(excValidation, "StorageConfiguration needs CompressionType and ExpectedBucketOwner.")
	}
	if d := dest.DeadLetterQueueS3Configuration; d != nil && (d.BucketARN == nil || *d.BucketARN != *st.BucketARN) {
		return nil, newErr(excInvalidArgument, "DeadLetterQueueS3Configuration.BucketARN must be the destination bucket in Runnel (errors go under ErrorOutputPrefix).")
	}
	if f := dest.DataFreshnessInSeconds; f != nil && (*f < 0 || *f > 900) {
		return nil, newErr(excInvalidArgument, "DataFreshnessInSeconds must be 0 to 900.")
	}
	if sc.RecordConfiguration == nil || sc.RecordConfiguration.RecordFormatType == nil ||
		!slices.Contains([]string{"JSON", "STRING", "BYTE_ARRAY"}, *sc.RecordConfiguration.RecordFormatType) {
		return nil, newErr(excInvalidArgument, "RecordConfiguration.RecordFormatType must be JSON, STRING or BYTE_ARRAY for an S3 destination.")
	}
	if sc.StreamARN == nil {
		return nil, newErr(excValidation, "1 validation error detected: Value null at 'streamARN' failed to satisfy constraint: Member must not be null")
	}
	stream, ok := h.parseStreamARN(*sc.StreamARN)
	if !ok {
		return nil, newErr(excInvalidArgument, "StreamARN %s is not a stream of this account and region.", *sc.StreamARN)
	}
	info, err := h.store.DescribeStream(stream)
	if err != nil {
		return nil, h.notFound(stream)
	}
	rec := &channelRec{Name: *in.ChannelName, ID: uuid.NewString(), Created: h.opts.Now(), Role: *in.ServiceExecutionRoleARN,
		Stream: stream, StreamCreated: info.Created, RecordFormat: *sc.RecordConfiguration.RecordFormatType, S3: *dest, Tags: in.Tags,
		JobOwner: h.channelARN(*in.ChannelName)}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if _, dup := cs.recs[rec.Name]; dup {
		return nil, newErr(excResourceInUse, "Channel %s under account %s already exists.", rec.Name, h.opts.AccountID)
	}
	src, err := cs.jobFile(rec)
	if err != nil {
		return nil, err
	}
	job := channelJob(rec.Name)
	if old, err := cs.opts.Jobs.Get(job); err == nil {
		if old.Owner != rec.JobOwner {
			return nil, newErr(excResourceInUse, "CreateChannel %s: job %s exists and is not a channel's delivery job; delete or rename that job, or choose another channel name.", rec.Name, job)
		}
		// The delivery job of a channel of this name that is gone (its
		// DeleteChannel failed after the channel went, or the server
		// stopped between a CreateChannel's job and its channel): it goes.
		if err := cs.removeJob(job, rec.JobOwner); err != nil {
			return nil, newErr(excResourceInUse, "CreateChannel %s: the delivery job a deleted channel of this name left does not go: %v", rec.Name, err)
		}
	}
	if _, err := cs.opts.Jobs.SubmitWith(src, jobs.SubmitOptions{Owner: rec.JobOwner}); err != nil {
		if errors.Is(err, jobs.ErrJobExists) || errors.Is(err, jobs.ErrJobNameTaken) || errors.Is(err, jobs.ErrJobOwned) {
			return nil, newErr(excResourceInUse, "CreateChannel %s: job %s exists and is not a channel's delivery job; delete or rename that job, or choose another channel name.", rec.Name, job)
		}
		return nil, newErr(excInvalidArgument, "CreateChannel %s: the delivery job does not start: %v", rec.Name, err)
	}
	cs.recs[rec.Name] = rec
	h.heal(cs, rec) // a job that failed to start (S3 unreachable) restarts by itself
	if err := cs.save(); err != nil {
		return nil, fmt.Errorf("save channels: %w", err)
	}
	return channelOutput{h.describeChannelRec(cs, rec)}, nil
}

// channelByARN finds the channel an input's ChannelARN names.
func (h *Handler) channelByARN(cs *channelSet, arn *string) (*channelRec, error) {
	if arn == nil || *arn == "" {
		return nil, newErr(excValidation, "1 validation error detected: Value null at 'channelARN' failed to satisfy constraint: Member must not be null")
	}
	name, ok := strings.CutPrefix(*arn, "arn:aws:kinesis:"+h.opts.Region+":"+h.opts.AccountID+":channel/")
	if r := cs.recs[name]; ok && r != nil {
		return r, nil
	}
	return nil, newErr(excResourceNotFound, "Channel %s under account %s not found.", *arn, h.opts.AccountID)
}

// withChannel answers a request whose input is {ChannelARN} with fn of
// the channel it names, with the channel set locked.
func (h *Handler) withChannel(r *request, fn func(cs *channelSet, rec *channelRec) (any, error)) (any, error) {
	cs := h.channelSet()
	if cs == nil {
		return h.channelNotFound(r)
	}
	var in struct {
		ChannelARN *string `json:"ChannelARN"`
	}
	if err := decode(r.codec, r.body, &in); err != nil {
		return nil, err
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	rec, err := h.channelByARN(cs, in.ChannelARN)
	if err != nil {
		return nil, err
	}
	return fn(cs, rec)
}

func (h *Handler) describeDeliveryChannel(r *request) (any, error) {
	return h.withChannel(r, func(cs *channelSet, rec *channelRec) (any, error) {
		return channelOutput{h.describeChannelRec(cs, rec)}, nil
	})
}

type channelSummary struct {
	ChannelARN               string  `json:"ChannelARN"`
	ChannelCreationTimestamp awsTime `json:"ChannelCreationTimestamp"`
	ChannelDestinationType   string  `json:"ChannelDestinationType"`
	ChannelId                string  `json:"ChannelId"`
	ChannelName              string  `json:"ChannelName"`
	ChannelStatus            string  `json:"ChannelStatus"`
	ChannelStatusReason      string  `json:"ChannelStatusReason,omitempty"`
	Streams                  []struct {
		StreamARN               string  `json:"StreamARN"`
		StreamCreationTimestamp awsTime `json:"StreamCreationTimestamp"`
	} `json:"Streams"`
}

func (h *Handler) listDeliveryChannels(r *request) (any, error) {
	cs := h.channelSet()
	if cs == nil {
		return h.listChannels(r)
	}
	var in struct {
		MaxResults   *int32  `json:"MaxResults"`
		NextToken    *string `json:"NextToken"`
		StreamFilter []struct {
			StreamARN *string `json:"StreamARN"`
		} `json:"StreamFilter"`
	}
	if err := decode(r.codec, r.body, &in); err != nil {
		return nil, err
	}
	limit := 100
	if in.MaxResults != nil {
		if *in.MaxResults < 1 {
			return nil, newErr(excValidation, "1 validation error detected: Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1", *in.MaxResults)
		}
		limit = min(int(*in.MaxResults), 100)
	}
	after := ""
	if in.NextToken != nil {
		after = *in.NextToken
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	var names []string
	for name, rec := range cs.recs {
		keep := name > after && len(in.StreamFilter) == 0
		for _, f := range in.StreamFilter {
			keep = keep || name > after && f.StreamARN != nil && *f.StreamARN == h.streamARN(rec.Stream)
		}
		if keep {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	out := struct {
		ChannelSummaries []channelSummary `json:"ChannelSummaries"`
		NextToken        *string          `json:"NextToken,omitempty"`
	}{ChannelSummaries: []channelSummary{}}
	if len(names) > limit {
		names = names[:limit]
		out.NextToken = &names[limit-1]
	}
	for _, name := range names {
		d := h.describeChannelRec(cs, cs.recs[name])
		s := channelSummary{ChannelARN: d.ChannelARN, ChannelCreationTimestamp: d.ChannelCreationTimestamp, ChannelDestinationType: "S3",
			ChannelId: d.ChannelId, ChannelName: d.ChannelName, ChannelStatus: d.ChannelStatus, ChannelStatusReason: d.ChannelStatusReason}
		s.Streams = append(s.Streams, struct {
			StreamARN               string  `json:"StreamARN"`
			StreamCreationTimestamp awsTime `json:"StreamCreationTimestamp"`
		}{d.StreamConfigurationList[0].StreamARN, d.StreamConfigurationList[0].StreamCreationTimestamp})
		out.ChannelSummaries = append(out.ChannelSummaries, s)
	}
	return out, nil
}

// updateDeliveryChannel changes DataFreshnessInSeconds: the delivery job
// stops with a savepoint and starts again from it with the new interval,
// so nothing is delivered twice. A delivery job that is not running
// (failed, say the bucket was unreachable, or stopped) starts again from
// its latest checkpoint, with or without a new interval: an update
// repairs a FAILED channel (its restart attempts used up, or its job
// stopped), unless its stream was deleted.
func (h *Handler) updateDeliveryChannel(r *request) (any, error) {
	cs := h.channelSet()
	if cs == nil {
		return h.channelNotFound(r)
	}
	var in struct {
		ChannelARN                 *string `json:"ChannelARN"`
		S3DestinationConfiguration *struct {
			DataFreshnessInSeconds *int32 `json:"DataFreshnessInSeconds"`
		} `json:"S3DestinationConfiguration"`
		S3TablesDestinationConfiguration json.RawMessage `json:"S3TablesDestinationConfiguration"`
	}
	if err := decode(r.codec, r.body, &in); err != nil {
		return nil, err
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	rec, err := h.channelByARN(cs, in.ChannelARN)
	if err != nil {
		return nil, err
	}
	if len(in.S3TablesDestinationConfiguration) > 0 && string(in.S3TablesDestinationConfiguration) != "null" {
		return nil, newErr(excInvalidArgument, "S3TablesDestinationConfiguration: channel %s delivers to a general purpose bucket.", rec.Name)
	}
	next, fresh := *rec, false
	if u := in.S3DestinationConfiguration; u != nil && u.DataFreshnessInSeconds != nil {
		if f := *u.DataFreshnessInSeconds; f < 0 || f > 900 {
			return nil, newErr(excInvalidArgument, "DataFreshnessInSeconds must be 0 to 900.")
		}
		next.S3.DataFreshnessInSeconds, fresh = u.DataFreshnessInSeconds, true
	}
	if reason := h.streamGone(rec); reason != "" {
		return nil, newErr(excResourceInUse, "UpdateChannel %s: %s.", rec.Name, reason)
	}
	job := channelJob(rec.Name)
	info, err := cs.opts.Jobs.Get(job)
	switch {
	case err != nil:
		return nil, newErr(excResourceInUse, "UpdateChannel %s: delivery job: %v; delete the channel and create it again.", rec.Name, err)
	case info.Owner != rec.JobOwner:
		return nil, newErr(excResourceInUse, "UpdateChannel %s: job %s is not this channel's delivery job: delete the channel.", rec.Name, job)
	}
	src, err := cs.jobFile(&next)
	if err != nil {
		return nil, err
	}
	// A job file of an earlier version of Runnel (without the restart
	// strategy) is deployed over too.
	if fresh || info.State != "running" || info.Spec != string(src) {
		if _, err := cs.opts.Jobs.DeployOwned(job, src, jobs.DeploySavepoint, rec.JobOwner); err != nil {
			return nil, newErr(excResourceInUse, "UpdateChannel %s: the delivery job does not start again from where it stopped: %v", rec.Name, err)
		}
	}
	*rec = next
	h.heal(cs, rec)
	rec.Updated = h.opts.Now()
	if err := cs.save(); err != nil {
		return nil, fmt.Errorf("save channels: %w", err)
	}
	return channelOutput{h.describeChannelRec(cs, rec)}, nil
}

// deleteDeliveryChannel stops the delivery job (its last checkpoint
// publishes what it holds), deletes it and forgets the channel. A job of
// the channel's name that is not its delivery job is left alone.
//
// A delivery job that is not running (a server killed during an earlier
// DeleteChannel or UpdateChannel left it stopped; S3 failed it) may
// leave objects staged: those of a checkpoint it completed and did not
// publish, and those of an epoch whose checkpoint never completed. Only
// its start settles them (it publishes the first, deletes the others), so
// it is resumed once before it stops; when it does not start (S3 still
// unreachable, its stream deleted) it is deleted all the same, and its
// staged objects stay until a channel of the name is created again.
func (h *Handler) deleteDeliveryChannel(r *request) (any, error) {
	return h.withChannel(r, func(cs *channelSet, rec *channelRec) (any, error) {
		job := channelJob(rec.Name)
		if info, err := cs.opts.Jobs.Get(job); err == nil && info.Owner == rec.JobOwner {
			if info.State != "running" && h.streamGone(rec) == "" {
				if _, err := cs.opts.Jobs.Resume(job); err != nil {
					h.opts.Logger.Warn("DeleteChannel: the delivery job does not start to publish what it staged; deleting it anyway",
						"channel", rec.Name, "job", job, "err", err)
				}
			}
			if err := cs.removeJob(job, rec.JobOwner); err != nil {
				return nil, newErr(excResourceInUse, "DeleteChannel %s: the delivery job does not go: %v", rec.Name, err)
			}
		}
		delete(cs.recs, rec.Name)
		if err := cs.save(); err != nil {
			return nil, fmt.Errorf("save channels: %w", err)
		}
		return struct{}{}, nil
	})
}
