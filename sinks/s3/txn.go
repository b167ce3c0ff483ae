package s3

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/runnel-dev/runnel/sinks"
	"github.com/runnel-dev/runnel/sinks/twophase"
	"github.com/runnel-dev/runnel/state"
)

// Keys of the sink's state space.
var (
	runKey = []byte{'r'}
	// stagingKey holds where the sink stages (stagingPlace, JSON), so
	// that a run staging elsewhere clears the old place too.
	stagingKey = []byte{'s'}
	lastKey    = []byte{'l'}
	epochTag   = byte('e')
)

// object is one staged object and the key it is published under, in
// the bucket it was staged in ("" in manifests written before objects
// named it: the sink's bucket). Keys and bucket are those of the
// configuration that staged it, so a job restored with another bucket
// or prefix (a deploy from a savepoint) publishes it where it was meant.
type object struct {
	Staged string `json:"s"`
	Final  string `json:"f"`
	Bucket string `json:"b,omitempty"`
}

// stagingPlace is where a run of the sink stages its objects.
type stagingPlace struct {
	Bucket string `json:"b"`
	Prefix string `json:"p"`
}

// manifest lists the objects staged under one checkpoint epoch.
type manifest struct {
	epoch   uint64
	objects []object
}

type txnState struct {
	sp *state.Space
	// objects were staged since the last PreCommit.
	objects []object
	// log holds the manifests pre-committed that wait for their
	// checkpoint.
	log *twophase.Log[manifest]
}

func epochKey(e uint64) []byte { return binary.BigEndian.AppendUint64([]byte{epochTag}, e) }

// OpenState switches the sink to staged writes. It publishes the
// manifests restored in sp (checkpoints whose commit may have been cut
// short; objects already published are recognised and kept), then
// deletes every other staged object of this job's sink: they belong to
// epochs whose checkpoint never completed, and the source replays them.
func (s *Sink) OpenState(ctx context.Context, sp *state.Space) error {
	if s.txn != nil {
		return fmt.Errorf("s3 sink %s: OpenState called twice", s.cfg.Sink)
	}
	t := &txnState{sp: sp, log: twophase.New[manifest]("s3 sink " + s.cfg.Sink)}
	s.txn = t
	if s.opening != nil {
		running := s.cl
		s.cl = s.opening
		defer func() { s.cl = running }()
	}
	if err := s.recover(ctx, t); err != nil {
		return t.log.Fail(fmt.Errorf("recover staged objects: %w", err))
	}
	return nil
}

func (s *Sink) recover(ctx context.Context, t *txnState) error {
	run, ok, err := t.sp.Get(runKey)
	if err != nil {
		return err
	}
	if ok {
		s.run = string(run)
	} else if err := t.sp.Set(runKey, []byte(s.run)); err != nil {
		return err
	}
	if b, ok, err := t.sp.Get(lastKey); err != nil {
		return err
	} else if ok && len(b) == 8 {
		t.log.Restored(binary.BigEndian.Uint64(b))
	}
	var restored []manifest
	err = t.sp.Scan([]byte{epochTag}, func(k, v []byte) error {
		if len(k) != 9 {
			return fmt.Errorf("manifest key %x is damaged", k)
		}
		m := manifest{epoch: binary.BigEndian.Uint64(k[1:])}
		if err := json.Unmarshal(v, &m.objects); err != nil {
			return fmt.Errorf("manifest of epoch %d: %w", m.epoch, err)
		}
		restored = append(restored, m)
		return nil
	})
	if err != nil {
		return err
	}
	for _, m := range restored {
		if err := s.publish(ctx, m); err != nil {
			return err
		}
		t.log.Restored(m.epoch)
	}
	here := stagingPlace{Bucket: s.cfg.Bucket, Prefix: s.stagingJob()}
	if b, ok, err := t.sp.Get(stagingKey); err != nil {
		return err
	} else if ok {
		var was stagingPlace
		if err := json.Unmarshal(b, &was); err != nil {
			return fmt.Errorf("staging place %q: %w", b, err)
		}
		// A bucket deleted since holds nothing to discard.
		if err := s.discardStaged(ctx, was); err != nil && !isNoSuchBucket(err) {
			return err
		}
	}
	if err := s.discardStaged(ctx, here); err != nil {
		return err
	}
	enc, _ := json.Marshal(here)
	return t.sp.Set(stagingKey, enc)
}

// discardStaged deletes every object under the staging prefix of this
// job's sink (all runs) at p.
func (s *Sink) discardStaged(ctx context.Context, p stagingPlace) error {
	pg := s3.NewListObjectsV2Paginator(s.cl, &s3.ListObjectsV2Input{Bucket: aws.String(p.Bucket), Prefix: aws.String(p.Prefix)})
	for pg.HasMorePages() {
		out, err := pg.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list s3://%s/%s: %w", p.Bucket, p.Prefix, err)
		}
		for _, o := range out.Contents {
			if _, err := s.cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(p.Bucket), Key: o.Key}); err != nil {
				return fmt.Errorf("delete unpublished s3://%s/%s: %w", p.Bucket, aws.ToString(o.Key), err)
			}
		}
	}
	return nil
}

// PreCommit closes every open object into the staging prefix and
// stores the epoch's manifest in the sink's state space.
func (s *Sink) PreCommit(ctx context.Context, epoch uint64) error {
	t := s.txn
	if t == nil {
		return twophase.ErrNotOpen
	}
	if err := t.log.Err(); err != nil {
		return err
	}
	// Flushed objects are staged under the epoch after the last one.
	if err := s.flushAll(ctx); err != nil {
		return err
	}
	if err := t.log.PreCommit(epoch); err != nil {
		return err
	}
	b := t.sp.NewBatch()
	b.Set(lastKey, binary.BigEndian.AppendUint64(nil, epoch))
	if len(t.objects) > 0 {
		enc, err := json.Marshal(t.objects)
		if err != nil {
			return s.fail(err)
		}
		b.Set(epochKey(epoch), enc)
	}
	if err := b.Commit(); err != nil {
		return s.fail(fmt.Errorf("store the manifest of epoch %d: %w", epoch, err))
	}
	if len(t.objects) > 0 {
		t.log.Add(epoch, manifest{epoch: epoch, objects: t.objects})
	}
	t.objects = nil
	s.seq = 0
	return nil
}

// Commit publishes the objects of every pre-committed epoch <= epoch
// and forgets their manifests.
func (s *Sink) Commit(ctx context.Context, epoch uint64) error {
	if s.txn == nil {
		return twophase.ErrNotOpen
	}
	return s.txn.log.Commit(epoch, func(_ uint64, m manifest) error { return s.publish(ctx, m) })
}

// publish copies each staged object of m to its final key, in the bucket
// it was staged in, deletes the staged copy, and then the manifest. Run
// again after a crash, it finds a staged object gone only when its final
// copy exists. A bucket deleted since fails it with
// sinks.ErrStagedTargetGone.
func (s *Sink) publish(ctx context.Context, m manifest) error {
	for _, o := range m.objects {
		bucket := o.Bucket
		if bucket == "" {
			bucket = s.cfg.Bucket
		}
		src := (&url.URL{Path: bucket + "/" + o.Staged}).EscapedPath()
		_, err := s.cl.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String(o.Final), CopySource: aws.String(src)})
		if isNoSuchBucket(err) {
			return fmt.Errorf("%w: epoch %d: object %s was staged for bucket %q, which no longer exists "+
				"(create it again with the staged objects and restart the job to publish them there; they are not written to %q): %w",
				sinks.ErrStagedTargetGone, m.epoch, o.Final, bucket, s.cfg.Bucket, err)
		}
		if isNotFound(err) {
			if _, herr := s.cl.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(o.Final)}); herr != nil {
				return fmt.Errorf("epoch %d: staged object %s is gone and its published copy %s is missing (%w): the epoch's rows are lost", m.epoch, o.Staged, o.Final, herr)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("epoch %d: publish %s as %s: %w", m.epoch, o.Staged, o.Final, err)
		}
		if _, err := s.cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(o.Staged)}); err != nil {
			return fmt.Errorf("epoch %d: delete published %s: %w", m.epoch, o.Staged, err)
		}
	}
	if err := s.txn.sp.Delete(epochKey(m.epoch)); err != nil {
		return fmt.Errorf("epoch %d: forget the manifest: %w", m.epoch, err)
	}
	return nil
}

func isNoSuchBucket(err error) bool {
	var nsb *types.NoSuchBucket
	var api smithy.APIError
	return errors.As(err, &nsb) || (errors.As(err, &api) && api.ErrorCode() == "NoSuchBucket")
}

func isNotFound(err error) bool {
	if err == nil {
		return false
	}
	var nsk *types.NoSuchKey
	if errors.As(err, &nsk) {
		return true
	}
	var api smithy.APIError
	return errors.As(err, &api) && (api.ErrorCode() == "NoSuchKey" || api.ErrorCode() == "NotFound")
}
