package window

// codecStore keeps every state only as bytes (as a Pebble store would):
// Put encodes, Get and Range decode fresh copies, so the operator must Put
// whatever it changes and state must survive serialisation.
type codecStore struct {
	codec Codec
	inner Store // holds *State values standing for the bytes
	bytes map[*State][]byte
}

func newCodecStore(c Codec) Store {
	return &codecStore{codec: c, inner: NewMemStore(), bytes: map[*State][]byte{}}
}

func (s *codecStore) decode(st *State) *State {
	if st == nil {
		return nil
	}
	out, err := s.codec.Unmarshal(s.bytes[st])
	if err != nil {
		panic(err)
	}
	return out
}

func (s *codecStore) Get(key string, w Window) *State { return s.decode(s.inner.Get(key, w)) }

func (s *codecStore) Put(key string, w Window, st *State) {
	b, err := s.codec.Marshal(st)
	if err != nil {
		panic(err)
	}
	if old := s.inner.Get(key, w); old != nil {
		delete(s.bytes, old)
	}
	token := &State{}
	s.bytes[token] = b
	s.inner.Put(key, w, token)
}

func (s *codecStore) Delete(key string, w Window) {
	if old := s.inner.Get(key, w); old != nil {
		delete(s.bytes, old)
	}
	s.inner.Delete(key, w)
}

func (s *codecStore) Windows(key string) []Window { return s.inner.Windows(key) }

func (s *codecStore) Range(lo, hi int64) []Entry {
	es := s.inner.Range(lo, hi)
	for i := range es {
		es[i].State = s.decode(es[i].State)
	}
	return es
}

func (s *codecStore) Len() int { return s.inner.Len() }
