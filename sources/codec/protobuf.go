package codec

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	// The well-known types registry schemas may import.
	_ "google.golang.org/protobuf/types/known/durationpb"
	_ "google.golang.org/protobuf/types/known/structpb"
	_ "google.golang.org/protobuf/types/known/timestamppb"
	_ "google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/runnel-dev/runnel/sources"
)

// messageFromSet finds message name in a serialized FileDescriptorSet.
func messageFromSet(raw []byte, name string) (protoreflect.MessageDescriptor, error) {
	set := &descriptorpb.FileDescriptorSet{}
	if err := proto.Unmarshal(raw, set); err != nil {
		return nil, fmt.Errorf("descriptor_set: %w", err)
	}
	files, err := protodesc.NewFiles(set)
	if err != nil {
		return nil, fmt.Errorf("descriptor_set: %w", err)
	}
	d, err := files.FindDescriptorByName(protoreflect.FullName(name))
	if err != nil {
		return nil, fmt.Errorf("message %s: %w", name, err)
	}
	md, ok := d.(protoreflect.MessageDescriptor)
	if !ok {
		return nil, fmt.Errorf("%s is not a message", name)
	}
	return md, nil
}

// protoSchema is a registry schema: its file, whose messages the
// records' message indexes pick.
type protoSchema struct {
	file protoreflect.FileDescriptor
}

type protoDecoder struct {
	c    *Codec
	json sources.JSONDecoder
}

func (d *protoDecoder) Decode(data []byte) (any, error) {
	md := d.c.proto
	if d.c.reg != nil {
		id, rest, err := splitWire(data)
		if err != nil {
			return nil, err
		}
		idx, payload, err := messageIndexes(rest)
		if err != nil {
			return nil, err
		}
		ps, err := d.c.reg.protoSchema(id)
		if err != nil {
			return nil, err
		}
		if md, err = ps.message(idx); err != nil {
			return nil, fmt.Errorf("protobuf: schema %d: %w", id, err)
		}
		if want := d.c.cfg.Protobuf; want != nil && want.Message != "" && string(md.FullName()) != want.Message {
			return nil, fmt.Errorf("protobuf: record of message %s, want %s", md.FullName(), want.Message)
		}
		data = payload
	}
	m := dynamicpb.NewMessage(md)
	if err := proto.Unmarshal(data, m); err != nil {
		return nil, fmt.Errorf("protobuf: %w", err)
	}
	// protojson gives the canonical JSON mapping (enum names, int64 as
	// strings, bytes as base64, well-known types); the JSON decoder turns
	// it into the values every format shares.
	js, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("protobuf: %w", err)
	}
	return d.json.Decode(js)
}

// messageIndexes reads the Confluent message-index list: a zigzag varint
// count then that many zigzag varint indexes; a count of 0 means [0].
func messageIndexes(b []byte) ([]int, []byte, error) {
	bad := errors.New("protobuf: bad message indexes after the schema id")
	n, k := protowire.ConsumeVarint(b)
	if k < 0 {
		return nil, nil, bad
	}
	b = b[k:]
	count := protowire.DecodeZigZag(n)
	if count == 0 {
		return []int{0}, b, nil
	}
	if count < 0 || count > 100 {
		return nil, nil, bad
	}
	idx := make([]int, count)
	for i := range idx {
		v, k := protowire.ConsumeVarint(b)
		if k < 0 {
			return nil, nil, bad
		}
		idx[i] = int(protowire.DecodeZigZag(v))
		b = b[k:]
	}
	return idx, b, nil
}

// message follows the indexes: a top-level message, then nested ones.
func (p *protoSchema) message(idx []int) (protoreflect.MessageDescriptor, error) {
	msgs := p.file.Messages()
	var md protoreflect.MessageDescriptor
	for _, i := range idx {
		if i < 0 || i >= msgs.Len() {
			return nil, fmt.Errorf("message index %v outside the file", idx)
		}
		md = msgs.Get(i)
		msgs = md.Messages()
	}
	return md, nil
}

func (r *registry) protoSchema(id uint32) (*protoSchema, error) {
	if s, ok := r.proto.get(id); ok {
		return s, nil
	}
	var fds []*descriptorpb.FileDescriptorProto
	if err := r.protoFiles(fmt.Sprintf("/schemas/ids/%d", id), &references{seen: map[string]bool{}}, 1, &fds); err != nil {
		return nil, err
	}
	files := new(protoregistry.Files)
	var last protoreflect.FileDescriptor
	for _, fd := range fds {
		if _, err := files.FindFileByPath(fd.GetName()); err == nil {
			continue
		}
		f, err := protodesc.NewFile(fd, resolver{files})
		if err != nil {
			return nil, fmt.Errorf("schema registry: Protobuf schema %d: %w", id, err)
		}
		if err := files.RegisterFile(f); err != nil {
			return nil, fmt.Errorf("schema registry: Protobuf schema %d: %w", id, err)
		}
		last = f
	}
	s := &protoSchema{file: last}
	r.proto.put(id, s)
	return s, nil
}

// resolver finds imports among the schema's references, then among the
// well-known types linked into the binary.
type resolver struct{ files *protoregistry.Files }

func (r resolver) FindFileByPath(p string) (protoreflect.FileDescriptor, error) {
	if f, err := r.files.FindFileByPath(p); err == nil {
		return f, nil
	}
	return protoregistry.GlobalFiles.FindFileByPath(p)
}

func (r resolver) FindDescriptorByName(n protoreflect.FullName) (protoreflect.Descriptor, error) {
	if d, err := r.files.FindDescriptorByName(n); err == nil {
		return d, nil
	}
	return protoregistry.GlobalFiles.FindDescriptorByName(n)
}
