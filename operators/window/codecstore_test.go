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

func (s *codecStore) decode(st *State) (*State, error) {
	if st == nil {
		return nil, nil
	}
	return s.codec.Unmarshal(s.bytes[st])
}

func (s *codecStore) Get(key string, w Window) (*State, error) {
	st, err := s.inner.Get(key, w)
	if err != nil {
		return nil, err
	}
	return s.decode(st)
}

func (s *codecStore) Put(key string, w Window, st *State) error {
	b, err := s.codec.Marshal(st)
	if err != nil {
		return err
	}
	if old, _ := s.inner.Get(key, w); old != nil {
		delete(s.bytes, old)
	}
	token := &State{}
	s.bytes[token] = b
	return s.inner.Put(key, w, token)
}

func (s *codecStore) Delete(key string, w Window) error {
	if old, _ := s.inner.Get(key, w); old != nil {
		delete(s.bytes, old)
	}
	return s.inner.Delete(key, w)
}

func (s *codecStore) Windows(key string) ([]Window, error) { return s.inner.Windows(key) }

func (s *codecStore) Range(lo, hi int64) ([]Entry, error) {
	es, err := s.inner.Range(lo, hi)
	if err != nil {
		return nil, err
	}
	for i := range es {
		if es[i].State, err = s.decode(es[i].State); err != nil {
			return nil, err
		}
	}
	return es, nil
}

func (s *codecStore) Len() int { return s.inner.Len() }

// must returns v, or fails the test (by a panic) when err is not nil: a
// store's error in these tests is a bug.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// noErr fails the test (by a panic) when err is not nil.
func noErr(err error) {
	if err != nil {
		panic(err)
	}
}
