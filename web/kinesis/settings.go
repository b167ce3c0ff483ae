package kinesis

import (
	"slices"
	"strings"

	"github.com/runnel-dev/runnel/streams"
)

// Stream settings kept as attributes: encryption, enhanced monitoring and
// the capacity mode.

func (h *Handler) setAttrs(name string, fn func(attrs map[string]string) error) error {
	defer h.forget(name)
	return h.mapErrOrNil(name, h.store.UpdateStream(name, func(u *streams.StreamUpdate) error { return fn(u.Attrs) }))
}

func (h *Handler) changeEncryption(r *request, start bool) (any, error) {
	var in encryptionInput
	name, err := h.streamInput(r, &in, &in.streamRef, func(v *validator) {
		if v.required("encryptionType", in.EncryptionType != nil) {
			v.enum("encryptionType", in.EncryptionType, "NONE", "KMS")
		}
		if v.required("keyId", in.KeyId != nil) {
			v.length("keyId", in.KeyId, 1, 2048)
		}
	})
	if err != nil {
		return nil, err
	}
	if *in.EncryptionType != "KMS" {
		return nil, newErr(excInvalidArgument, "Encryption type %s is not supported; use KMS.", *in.EncryptionType)
	}
	if _, err := h.activeStream(name); err != nil {
		return nil, err
	}
	return empty{}, h.setAttrs(name, func(a map[string]string) error {
		if start {
			a[attrEncryption], a[attrKeyID] = "KMS", *in.KeyId
		} else {
			delete(a, attrEncryption)
			delete(a, attrKeyID)
		}
		return nil
	})
}

func (h *Handler) startEncryption(r *request) (any, error) { return h.changeEncryption(r, true) }
func (h *Handler) stopEncryption(r *request) (any, error)  { return h.changeEncryption(r, false) }

var shardLevelMetrics = []string{"IncomingBytes", "IncomingRecords", "OutgoingBytes", "OutgoingRecords",
	"WriteProvisionedThroughputExceeded", "ReadProvisionedThroughputExceeded", "IteratorAgeMilliseconds", "ALL"}

func (h *Handler) changeMonitoring(r *request, enable bool) (any, error) {
	var in monitoringInput
	if err := decode(r.codec, r.body, &in); err != nil {
		return nil, err
	}
	var v validator
	validateRef(&v, in.streamRef)
	if v.required("shardLevelMetrics", in.ShardLevelMetrics != nil) {
		if len(in.ShardLevelMetrics) < 1 {
			v.add("[]", "shardLevelMetrics", "have length greater than or equal to 1")
		}
		for i := range in.ShardLevelMetrics {
			v.enum("shardLevelMetrics."+itoa(i+1)+".member", &in.ShardLevelMetrics[i], shardLevelMetrics...)
		}
	}
	name, info, err := h.validActive(&v, in.streamRef)
	if err != nil {
		return nil, err
	}
	cur := monitoringOf(&info)
	want := map[string]bool{}
	for _, m := range cur {
		want[m] = true
	}
	for _, m := range in.ShardLevelMetrics {
		names := []string{m}
		if m == "ALL" {
			names = shardLevelMetrics[:len(shardLevelMetrics)-1]
		}
		for _, n := range names {
			want[n] = enable
		}
	}
	var desired []string
	for _, m := range shardLevelMetrics[:len(shardLevelMetrics)-1] {
		if want[m] {
			desired = append(desired, m)
		}
	}
	if err := h.setAttrs(name, func(a map[string]string) error {
		a[attrMonitoring] = strings.Join(desired, ",")
		return nil
	}); err != nil {
		return nil, err
	}
	if desired == nil {
		desired = []string{}
	}
	return monitoringOutput{StreamName: name, StreamARN: h.streamARN(name), CurrentShardLevelMetrics: slices.Clone(cur), DesiredShardLevelMetrics: desired}, nil
}

func (h *Handler) enableMonitoring(r *request) (any, error)  { return h.changeMonitoring(r, true) }
func (h *Handler) disableMonitoring(r *request) (any, error) { return h.changeMonitoring(r, false) }

func (h *Handler) updateStreamMode(r *request) (any, error) {
	var in updateStreamModeInput
	if err := decode(r.codec, r.body, &in); err != nil {
		return nil, err
	}
	var v validator
	if v.required("streamARN", in.StreamARN != nil) {
		validateRef(&v, streamRef{StreamARN: in.StreamARN})
	}
	if v.required("streamModeDetails", in.StreamModeDetails != nil) && v.required("streamModeDetails.streamMode", in.StreamModeDetails.StreamMode != nil) {
		v.enum("streamModeDetails.streamMode", in.StreamModeDetails.StreamMode, modeProvisioned, modeOnDemand)
	}
	name, _, err := h.validActive(&v, streamRef{StreamARN: in.StreamARN})
	if err != nil {
		return nil, err
	}
	return empty{}, h.setAttrs(name, func(a map[string]string) error {
		a[attrMode] = *in.StreamModeDetails.StreamMode
		return nil
	})
}
