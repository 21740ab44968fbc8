package revocation

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/model"
)

// memFeed is a store.Revocations whose rows the test places by seq, to
// model out-of-order commits and rolled-back inserts.
type memFeed struct {
	mu   sync.Mutex
	rows []model.Revocation
	next int64
}

func (m *memFeed) AppendRevocations(_ context.Context, ids []string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		m.next++
		m.rows = append(m.rows, model.Revocation{Seq: m.next, SessionID: id, At: at})
	}
	return nil
}

func (m *memFeed) put(seq int64, id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rows = append(m.rows, model.Revocation{Seq: seq, SessionID: id})
	slices.SortFunc(m.rows, func(a, b model.Revocation) int { return int(a.Seq - b.Seq) })
}

func (m *memFeed) RevocationsAfter(_ context.Context, after int64, limit int) ([]model.Revocation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []model.Revocation
	for _, r := range m.rows {
		if r.Seq > after && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, nil
}

func (m *memFeed) LastRevocationSeq(context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.rows) == 0 {
		return 0, nil
	}
	return m.rows[len(m.rows)-1].Seq, nil
}

func (m *memFeed) DeleteRevocationsBefore(context.Context, time.Time) (int, error) { return 0, nil }

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestPoll(t *testing.T) {
	type step struct {
		put     map[int64]string // rows committed before this poll
		advance time.Duration
		want    []string // ids invalidated by this poll
		cursor  int64
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"first poll only positions the cursor", []step{
			{put: map[int64]string{1: "old"}, want: nil, cursor: 1},
			{put: map[int64]string{2: "a", 3: "b"}, want: []string{"a", "b"}, cursor: 3},
			{want: nil, cursor: 3},
		}},
		{"out-of-order commit is not skipped", []step{
			{cursor: 0},
			{put: map[int64]string{2: "late-seq-first"}, want: []string{"late-seq-first"}, cursor: 0},
			{put: map[int64]string{1: "early-seq-second"}, want: []string{"early-seq-second"}, cursor: 2},
		}},
		{"a hole that never fills is given up after HoleWait", []step{
			{cursor: 0},
			{put: map[int64]string{2: "x"}, want: []string{"x"}, cursor: 0},
			{advance: time.Second, want: nil, cursor: 0},
			{advance: 2 * time.Second, put: map[int64]string{3: "y"}, want: []string{"y"}, cursor: 3},
		}},
		{"a pruned feed's wide gap is jumped, not tracked hole by hole", []step{
			{cursor: 0}, // empty table, but the sequence stands at 3 000 000
			{put: map[int64]string{3_000_001: "z"}, want: []string{"z"}, cursor: 3_000_001},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := &memFeed{}
			clock := &fakeClock{t: time.Unix(1000, 0)}
			var got []string
			f := New(Options{Store: st, Now: clock.now, HoleWait: 2 * time.Second,
				Invalidate: func(ids []string) { got = append(got, ids...) }})
			for i, s := range tc.steps {
				for seq, id := range s.put {
					st.put(seq, id)
				}
				clock.t = clock.t.Add(s.advance)
				got = nil
				if err := f.Poll(t.Context()); err != nil {
					t.Fatal(err)
				}
				slices.Sort(got)
				want := slices.Clone(s.want)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("step %d: invalidated %q, want %q", i, got, want)
				}
				if c := f.Cursor(); c != s.cursor {
					t.Errorf("step %d: cursor %d, want %d", i, c, s.cursor)
				}
			}
		})
	}
}

type fakeFast struct {
	mu  sync.Mutex
	got [][]string
}

func (f *fakeFast) PublishRevocations(_ context.Context, ids []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, ids)
	return nil
}

func TestRevokedWritesBothPaths(t *testing.T) {
	for _, healthy := range []bool{true, false} {
		st := &memFeed{}
		fast := &fakeFast{}
		f := New(Options{Store: st, Fast: fast, FastHealthy: func() bool { return healthy }, Invalidate: func([]string) {}})
		f.Revoked([]string{"s1", "s2"})
		if n, _ := st.LastRevocationSeq(t.Context()); n != 2 {
			t.Errorf("healthy=%v: store feed has %d rows, want 2", healthy, n)
		}
		if want := map[bool]int{true: 1, false: 0}[healthy]; len(fast.got) != want {
			t.Errorf("healthy=%v: %d publishes, want %d", healthy, len(fast.got), want)
		}
	}
}

func TestRunDeliversWithinOnePoll(t *testing.T) {
	st := &memFeed{}
	got := make(chan []string, 1)
	f := New(Options{Store: st, Poll: 20 * time.Millisecond, Invalidate: func(ids []string) { got <- ids }})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go f.Run(ctx)
	// Wait for the cursor to be placed, then revoke.
	deadline := time.Now().Add(2 * time.Second)
	for {
		f.mu.Lock()
		ready := f.ready
		f.mu.Unlock()
		if ready || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	f.Revoked([]string{"s1"})
	select {
	case ids := <-got:
		if !slices.Equal(ids, []string{"s1"}) {
			t.Fatalf("got %q", ids)
		}
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("delivered after %v", d)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("revocation not delivered")
	}
}
