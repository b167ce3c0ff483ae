package codec

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/runnel-dev/runnel/sources"
)

func mustNew(t *testing.T, cfg Config) Decoder {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c.NewDecoder()
}

func check(t *testing.T, d Decoder, data []byte, want any) {
	t.Helper()
	got, err := d.Decode(data)
	if err != nil {
		t.Fatalf("decode %q: %v", data, err)
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		t.Fatalf("decoded\n got %s\nwant %s", g, w)
	}
}

func TestCSV(t *testing.T) {
	d := mustNew(t, Config{Format: FormatCSV, CSV: &CSV{Columns: []string{"page", "ms", "note"}, Numbers: []string{"ms"}, Delimiter: ";"}})
	check(t, d, []byte("home;12.5;\"a;b\"\n"), map[string]any{"page": "home", "ms": 12.5, "note": "a;b"})
	check(t, d, []byte("home;;"), map[string]any{"page": "home", "ms": nil, "note": ""})
	for _, bad := range []string{"", "a;b", "a;x;c", "a;1;c\nd;2;e"} {
		if _, err := d.Decode([]byte(bad)); err == nil {
			t.Errorf("csv %q decoded", bad)
		}
	}
	for _, c := range []*CSV{nil, {}, {Columns: []string{"a", "a"}}, {Columns: []string{"a"}, Numbers: []string{"b"}}, {Columns: []string{"a"}, Delimiter: ",,"}} {
		if _, err := New(Config{Format: FormatCSV, CSV: c}); !errors.Is(err, sources.ErrConfig) {
			t.Errorf("csv %+v: %v, want a configuration error", c, err)
		}
	}
}

const avroSchema = `{"type":"record","name":"Click","namespace":"shop","fields":[
 {"name":"user","type":"string"},
 {"name":"n","type":"long"},
 {"name":"ref","type":["null","string"]},
 {"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},
 {"name":"raw","type":"bytes"},
 {"name":"tags","type":{"type":"array","items":"int"}}]}`

func avroRecord(t *testing.T) []byte {
	t.Helper()
	s := avro.MustParse(avroSchema)
	b, err := avro.Marshal(s, map[string]any{"user": "ann", "n": int64(7), "ref": map[string]any{"string": "ad"},
		"ts": time.UnixMilli(1_700_000_000_123).UTC(), "raw": []byte{1, 2}, "tags": []any{1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var avroWant = map[string]any{"user": "ann", "n": 7.0, "ref": "ad", "ts": 1_700_000_000_123.0,
	"raw": sources.Bytes{1, 2}, "tags": []any{1.0, 2.0}}

func wire(id uint32, rest ...[]byte) []byte {
	b := []byte{0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], id)
	for _, r := range rest {
		b = append(b, r...)
	}
	return b
}

// registryServer speaks the schema registry's REST subset the codec uses;
// it counts schema fetches and checks basic auth.
func registryServer(t *testing.T, schemas map[string]map[string]any) (*httptest.Server, *atomic.Int32) {
	var fetches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "runnel" || p != "pw" {
			http.Error(w, `{"error_code":401,"message":"Unauthorized"}`, http.StatusUnauthorized)
			return
		}
		fetches.Add(1)
		s, ok := schemas[r.URL.Path]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"error_code":40403,"message":"Schema not found"}`)
			return
		}
		w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
		json.NewEncoder(w).Encode(s)
	}))
	t.Cleanup(srv.Close)
	return srv, &fetches
}

func TestAvro(t *testing.T) {
	check(t, mustNew(t, Config{Format: FormatAvro, Avro: avroSchema}), avroRecord(t), avroWant)
	if _, err := New(Config{Format: FormatAvro, Avro: `{"type":"record"`}); !errors.Is(err, sources.ErrConfig) {
		t.Errorf("a broken schema: %v", err)
	}
	if _, err := New(Config{Format: FormatAvro}); !errors.Is(err, sources.ErrConfig) {
		t.Errorf("no schema: %v", err)
	}
}

// TestAvroRegistry decodes Confluent wire-format records, fetching the
// schema once for many records.
func TestAvroRegistry(t *testing.T) {
	srv, fetches := registryServer(t, map[string]map[string]any{"/schemas/ids/42": {"schema": avroSchema}})
	t.Setenv("RUNNEL_TEST_REGISTRY_PW", "pw")
	d := mustNew(t, Config{Format: FormatAvro, Registry: &Registry{URL: srv.URL, Username: "runnel", PasswordEnv: "RUNNEL_TEST_REGISTRY_PW"}})
	for range 5 {
		check(t, d, wire(42, avroRecord(t)), avroWant)
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("%d schema fetches for 5 records of one schema, want 1", n)
	}
	if _, err := d.Decode(avroRecord(t)); !errors.Is(err, ErrWireFormat) {
		t.Errorf("a record without the wire format: %v", err)
	}
	if _, err := d.Decode(wire(43, avroRecord(t))); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("an unknown schema id: %v", err)
	}
	t.Setenv("RUNNEL_TEST_REGISTRY_PW", "guess")
	bad := mustNew(t, Config{Format: FormatAvro, Registry: &Registry{URL: srv.URL, Username: "runnel", PasswordEnv: "RUNNEL_TEST_REGISTRY_PW"}})
	if _, err := bad.Decode(wire(42, avroRecord(t))); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("a wrong password: %v", err)
	}
}

// shopFile is shop.proto: message Item {string sku = 1;} message Order
// {string id = 1; int64 cents = 2; repeated string tags = 3; Item item = 4;
// Status status = 5;} enum Status {NEW = 0; PAID = 1;}
func shopFile() *descriptorpb.FileDescriptorProto {
	str := descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum()
	opt := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()
	field := func(name string, n int32, typ *descriptorpb.FieldDescriptorProto_Type, label *descriptorpb.FieldDescriptorProto_Label, typeName string) *descriptorpb.FieldDescriptorProto {
		f := &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(n), Type: typ, Label: label, JsonName: proto.String(name)}
		if typeName != "" {
			f.TypeName = proto.String(typeName)
		}
		return f
	}
	return &descriptorpb.FileDescriptorProto{
		Name: proto.String("shop.proto"), Package: proto.String("shop"), Syntax: proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("Item"), Field: []*descriptorpb.FieldDescriptorProto{field("sku", 1, str, opt, "")}},
			{Name: proto.String("Order"), Field: []*descriptorpb.FieldDescriptorProto{
				field("id", 1, str, opt, ""),
				field("cents", 2, descriptorpb.FieldDescriptorProto_TYPE_INT64.Enum(), opt, ""),
				field("tags", 3, str, descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum(), ""),
				field("item", 4, descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum(), opt, ".shop.Item"),
				field("status", 5, descriptorpb.FieldDescriptorProto_TYPE_ENUM.Enum(), opt, ".shop.Status"),
			}},
		},
		EnumType: []*descriptorpb.EnumDescriptorProto{{Name: proto.String("Status"), Value: []*descriptorpb.EnumValueDescriptorProto{
			{Name: proto.String("NEW"), Number: proto.Int32(0)}, {Name: proto.String("PAID"), Number: proto.Int32(1)}}}},
	}
}

func order(t *testing.T) []byte {
	t.Helper()
	f, err := protodesc.NewFile(shopFile(), nil)
	if err != nil {
		t.Fatal(err)
	}
	md := f.Messages().ByName("Order")
	m := dynamicpb.NewMessage(md)
	m.Set(md.Fields().ByName("id"), protoValueOf("o-1"))
	m.Set(md.Fields().ByName("cents"), protoValueOf(int64(1250)))
	tags := m.Mutable(md.Fields().ByName("tags")).List()
	tags.Append(protoValueOf("gift"))
	item := m.Mutable(md.Fields().ByName("item")).Message()
	item.Set(md.Fields().ByName("item").Message().Fields().ByName("sku"), protoValueOf("sku-9"))
	m.Set(md.Fields().ByName("status"), protoEnum(1))
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The canonical JSON mapping: int64 as a string, enums by name.
var orderWant = map[string]any{"id": "o-1", "cents": "1250", "tags": []any{"gift"}, "item": map[string]any{"sku": "sku-9"}, "status": "PAID"}

func TestProtobuf(t *testing.T) {
	set, err := proto.Marshal(&descriptorpb.FileDescriptorSet{File: []*descriptorpb.FileDescriptorProto{shopFile()}})
	if err != nil {
		t.Fatal(err)
	}
	d := mustNew(t, Config{Format: FormatProtobuf, Protobuf: &Protobuf{Message: "shop.Order", DescriptorSet: base64.StdEncoding.EncodeToString(set)}})
	check(t, d, order(t), orderWant)
	if _, err := d.Decode([]byte{0xff, 0xff}); err == nil {
		t.Error("garbage decoded")
	}
	for _, p := range []*Protobuf{nil, {Message: "shop.Order"}, {Message: "shop.Nope", DescriptorSet: base64.StdEncoding.EncodeToString(set)}, {Message: "shop.Order", DescriptorSet: "!!"}} {
		if _, err := New(Config{Format: FormatProtobuf, Protobuf: p}); !errors.Is(err, sources.ErrConfig) {
			t.Errorf("protobuf %+v: %v, want a configuration error", p, err)
		}
	}
}

// TestProtobufRegistry decodes wire-format records whose message indexes
// pick the second message of the registry's serialized schema.
func TestProtobufRegistry(t *testing.T) {
	fd, err := proto.Marshal(shopFile())
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := registryServer(t, map[string]map[string]any{"/schemas/ids/7": {"schemaType": "PROTOBUF", "schema": base64.StdEncoding.EncodeToString(fd)}})
	t.Setenv("RUNNEL_TEST_REGISTRY_PW", "pw")
	d := mustNew(t, Config{Format: FormatProtobuf, Registry: &Registry{URL: srv.URL, Username: "runnel", PasswordEnv: "RUNNEL_TEST_REGISTRY_PW"}})
	// Message indexes [1] (Order): count 1, index 1, both zigzag.
	check(t, d, wire(7, []byte{2, 2}, order(t)), orderWant)
	// A count of 0 means the first message (Item).
	item, _ := proto.Marshal(&descriptorpb.FileDescriptorProto{}) // empty payload: every field unset
	check(t, d, wire(7, []byte{0}, item), map[string]any{})
	only := mustNew(t, Config{Format: FormatProtobuf, Protobuf: &Protobuf{Message: "shop.Order"}, Registry: &Registry{URL: srv.URL, Username: "runnel", PasswordEnv: "RUNNEL_TEST_REGISTRY_PW"}})
	if _, err := only.Decode(wire(7, []byte{0}, item)); err == nil {
		t.Error("a record of shop.Item decoded where shop.Order was asked for")
	}
}

func FuzzDecoders(f *testing.F) {
	f.Add([]byte("a,1,c"))
	f.Add(wire(1, []byte{2, 2, 8, 1}))
	csvD := &csvDecoder{spec: &csvSpec{columns: []string{"a", "b", "c"}, numbers: []bool{false, true, false}, comma: ','}}
	f.Fuzz(func(t *testing.T, b []byte) {
		csvD.Decode(b)
		if _, rest, err := splitWire(b); err == nil {
			messageIndexes(rest)
		}
	})
}

func protoValueOf(v any) protoreflect.Value { return protoreflect.ValueOf(v) }

func protoEnum(n int32) protoreflect.Value {
	return protoreflect.ValueOfEnum(protoreflect.EnumNumber(n))
}

// TestAvroRegistryReferences decodes records whose registry schema uses
// named types of other subjects (Confluent schema references), which in
// turn reference others: the codec fetches them depth first, once each,
// and parses the schema with their types. A missing reference, a chain
// deeper than the bound and a cycle are errors naming the reference.
func TestAvroRegistryReferences(t *testing.T) {
	const (
		country = `{"type":"enum","name":"Country","namespace":"geo","symbols":["DE","FR"]}`
		address = `{"type":"record","name":"Address","namespace":"geo","fields":[{"name":"city","type":"string"},{"name":"country","type":"geo.Country"}]}`
		order   = `{"type":"record","name":"Order","namespace":"shop","fields":[{"name":"id","type":"string"},{"name":"ship","type":"geo.Address"},{"name":"bill","type":["null","geo.Address"]},{"name":"from","type":"geo.Country"}]}`
	)
	ref := func(name, subject string, version int) map[string]any {
		return map[string]any{"name": name, "subject": subject, "version": version}
	}
	schemas := map[string]map[string]any{
		"/schemas/ids/50":              {"schema": order, "references": []any{ref("geo.Address", "address", 3), ref("geo.Country", "country", 1)}},
		"/subjects/address/versions/3": {"subject": "address", "version": 3, "schema": address, "references": []any{ref("geo.Country", "country", 1)}},
		"/subjects/country/versions/1": {"subject": "country", "version": 1, "schema": country},
		// 51 references a subject the registry does not have.
		"/schemas/ids/51": {"schema": order, "references": []any{ref("geo.Address", "gone", 1)}},
		// 52 and 53 reference themselves round and round.
		"/schemas/ids/52":           {"schema": order, "references": []any{ref("geo.Address", "loop", 1)}},
		"/subjects/loop/versions/1": {"schema": address, "references": []any{ref("geo.Country", "loop", 1)}},
		"/schemas/ids/53":           {"schema": order, "references": []any{ref("geo.Address", "deep", 1)}},
	}
	// deep/1 → deep/2 → … one past the bound.
	for i := 1; i <= maxReferenceDepth+1; i++ {
		schemas[fmt.Sprintf("/subjects/deep/versions/%d", i)] = map[string]any{"schema": country, "references": []any{ref("geo.Country", "deep", i+1)}}
	}
	srv, fetches := registryServer(t, schemas)
	t.Setenv("RUNNEL_TEST_REGISTRY_PW", "pw")
	d := mustNew(t, Config{Format: FormatAvro, Registry: &Registry{URL: srv.URL, Username: "runnel", PasswordEnv: "RUNNEL_TEST_REGISTRY_PW"}})

	// The writer's side: the same types in one cache of its own.
	cache := &avro.SchemaCache{}
	for _, s := range []string{country, address, order} {
		if _, err := avro.ParseWithCache(s, "", cache); err != nil {
			t.Fatal(err)
		}
	}
	addr := map[string]any{"city": "Lyon", "country": "FR"}
	data, err := avro.Marshal(cache.Get("shop.Order"), map[string]any{"id": "o-1", "ship": addr,
		"bill": map[string]any{"geo.Address": map[string]any{"city": "Bonn", "country": "DE"}}, "from": "DE"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"id": "o-1", "ship": map[string]any{"city": "Lyon", "country": "FR"},
		"bill": map[string]any{"city": "Bonn", "country": "DE"}, "from": "DE"}
	for range 3 {
		check(t, d, wire(50, data), want)
	}
	if n := fetches.Load(); n != 3 {
		t.Errorf("%d registry fetches for a schema with two references (one shared), want 3", n)
	}
	for id, wantErr := range map[uint32]string{
		51: "reference geo.Address: schema registry: GET /subjects/gone/versions/1: 404",
		52: "geo.Country", // the cycle ends at a seen subject; Country is then undefined
		53: fmt.Sprintf("nested deeper than %d references", maxReferenceDepth),
	} {
		_, err := d.Decode(wire(id, data))
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("schema %d: %v, want an error containing %q", id, err, wantErr)
		}
	}
}
