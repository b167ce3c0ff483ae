package kinesis

import (
	"sort"
	"strings"
	"unicode"

	"github.com/runnel-dev/runnel/streams"
)

// Stream tags: AWS's checks of keys and values, and the tag operations on
// streams (TagResource and friends, which also take consumers, are in
// consumers.go).

func validateTags(v *validator, tags map[string]string, field string, maxCount int) {
	if len(tags) < 1 {
		v.add("{}", field, "have length greater than or equal to 1")
	}
	if len(tags) > maxCount {
		v.add("{...}", field, "have length less than or equal to "+itoa(maxCount))
	}
	for k, val := range tags {
		if n := len([]rune(k)); n < 1 || n > 128 {
			v.add(k, field+".key", "have length less than or equal to 128")
		}
		if len([]rune(val)) > 256 {
			v.add(val, field+".value", "have length less than or equal to 256")
		}
	}
}

// validTagText reports whether a tag key or value holds only the
// characters AWS accepts: Unicode letters and digits, the space and
// _ . / = + - @ %. A % passes this check but AWS rejects it later, with
// another message (see tagPercent).
func validTagText(s string) bool {
	for _, c := range s {
		if !(unicode.IsLetter(c) || unicode.IsDigit(c) || c == ' ' || strings.ContainsRune("_./=+-@%", c)) {
			return false
		}
	}
	return true
}

var errTagChars = newErr(excInvalidArgument, "Some tags contain invalid characters. Valid characters: Unicode letters, digits, white space, _ . / = + - %% @.")

func checkTagChars(tags map[string]string) error {
	for k, v := range tags {
		if !validTagText(k) || !validTagText(v) {
			return errTagChars
		}
	}
	return nil
}

func (h *Handler) addTags(name string, tags map[string]string) error {
	if _, err := h.describe(name); err != nil {
		return err
	}
	if err := checkTagChars(tags); err != nil {
		return err
	}
	for k, v := range tags {
		if strings.Contains(k, "%") || strings.Contains(v, "%") {
			return newErr(excInvalidArgument, "Failed to add tags to stream %s under account %s because some tags contained illegal characters. The allowed characters are Unicode letters, white-spaces, '_',',','/','=','+','-','@'.", name, h.opts.AccountID)
		}
	}
	err := h.store.UpdateStream(name, func(u *streams.StreamUpdate) error {
		n := len(u.Tags)
		for k := range tags {
			if _, ok := u.Tags[k]; !ok {
				n++
			}
		}
		if n > maxTagsPerStream {
			return newErr(excInvalidArgument, "Failed to add tags to stream %s under account %s because a given stream cannot have more than %d tags associated with it.", name, h.opts.AccountID, maxTagsPerStream)
		}
		for k, val := range tags {
			u.Tags[k] = val
		}
		return nil
	})
	return h.mapErrOrNil(name, err)
}

func (h *Handler) removeTags(name string, keys []string) error {
	if _, err := h.describe(name); err != nil {
		return err
	}
	for _, k := range keys {
		if !validTagText(k) {
			return errTagChars
		}
	}
	for _, k := range keys {
		if strings.Contains(k, "%") {
			return newErr(excInvalidArgument, "Failed to remove tags from stream %s under account %s because some tags contained illegal characters. The allowed characters are Unicode letters, white-spaces, '_',',','/','=','+','-','@'.", name, h.opts.AccountID)
		}
	}
	err := h.store.UpdateStream(name, func(u *streams.StreamUpdate) error {
		for _, k := range keys {
			delete(u.Tags, k)
		}
		return nil
	})
	return h.mapErrOrNil(name, err)
}

func (h *Handler) addTagsToStream(r *request) (any, error) {
	var in addTagsInput
	name, err := h.streamInput(r, &in, &in.streamRef, func(v *validator) {
		if v.required("tags", in.Tags != nil) {
			validateTags(v, in.Tags, "tags", maxTagsPerRequest)
		}
	})
	if err != nil {
		return nil, err
	}
	return empty{}, h.addTags(name, in.Tags)
}

func validateTagKeys(v *validator, keys []string, present bool) {
	if v.required("tagKeys", present) {
		if len(keys) < 1 {
			v.add("[]", "tagKeys", "have length greater than or equal to 1")
		}
		if len(keys) > maxTagsPerStream {
			v.add("[...]", "tagKeys", "have length less than or equal to 50")
		}
	}
}

func (h *Handler) removeTagsFromStream(r *request) (any, error) {
	var in removeTagsInput
	name, err := h.streamInput(r, &in, &in.streamRef, func(v *validator) {
		validateTagKeys(v, in.TagKeys, in.TagKeys != nil)
	})
	if err != nil {
		return nil, err
	}
	return empty{}, h.removeTags(name, in.TagKeys)
}

func sortedTags(m map[string]string) []tag {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]tag, 0, len(keys))
	for _, k := range keys {
		val := m[k]
		out = append(out, tag{Key: k, Value: &val})
	}
	return out
}

func (h *Handler) listTagsForStream(r *request) (any, error) {
	var in listTagsInput
	name, err := h.streamInput(r, &in, &in.streamRef, func(v *validator) {
		v.rangeInt("limit", in.Limit, 1, 50)
		v.length("exclusiveStartTagKey", in.ExclusiveStartTagKey, 1, 128)
	})
	if err != nil {
		return nil, err
	}
	info, err := h.describe(name)
	if err != nil {
		return nil, err
	}
	limit := maxTagsPerStream
	if in.Limit != nil {
		limit = int(*in.Limit)
	}
	out := listTagsOutput{Tags: []tag{}}
	for _, t := range sortedTags(info.Tags) {
		if in.ExclusiveStartTagKey != nil && t.Key <= *in.ExclusiveStartTagKey {
			continue
		}
		if len(out.Tags) == limit {
			out.HasMoreTags = true
			break
		}
		out.Tags = append(out.Tags, t)
	}
	return out, nil
}
