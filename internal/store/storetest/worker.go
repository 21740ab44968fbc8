package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/model"
	"github.com/gatehouse-sso/gatehouse/internal/store"
)

// workerCases cover the revocation feed, leases and the outbox.
var workerCases = []testCase{
	{"Revocations/FeedInOrder", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		last, err := s.LastRevocationSeq(ctx)
		mustNil(t, err)
		if last != 0 {
			t.Fatalf("LastRevocationSeq on an empty feed = %d, want 0", last)
		}
		mustNil(t, s.AppendRevocations(ctx, nil, base)) // nothing to do is fine
		mustNil(t, s.AppendRevocations(ctx, []string{"s1", "s2"}, base))
		mustNil(t, s.AppendRevocations(ctx, []string{"s3"}, base.Add(time.Minute)))
		all, err := s.RevocationsAfter(ctx, 0, 0)
		mustNil(t, err)
		var ids []string
		for i, r := range all {
			ids = append(ids, r.SessionID)
			if i > 0 && r.Seq <= all[i-1].Seq {
				t.Errorf("seq not ascending: %d after %d", r.Seq, all[i-1].Seq)
			}
		}
		checkNames(t, "revoked sessions", ids, []string{"s1", "s2", "s3"})
		checkTime(t, "At", all[2].At, base.Add(time.Minute))
		last, err = s.LastRevocationSeq(ctx)
		mustNil(t, err)
		if last != all[2].Seq {
			t.Errorf("LastRevocationSeq = %d, want %d", last, all[2].Seq)
		}
		after, err := s.RevocationsAfter(ctx, all[0].Seq, 1)
		mustNil(t, err)
		if len(after) != 1 || after[0].SessionID != "s2" {
			t.Errorf("RevocationsAfter(first, 1) = %+v, want s2 only", after)
		}
		n, err := s.DeleteRevocationsBefore(ctx, base.Add(time.Second))
		mustNil(t, err)
		if n != 2 {
			t.Errorf("DeleteRevocationsBefore removed %d, want 2", n)
		}
		rest, err := s.RevocationsAfter(ctx, 0, 0)
		mustNil(t, err)
		if len(rest) != 1 || rest[0].SessionID != "s3" {
			t.Errorf("after pruning: %+v, want s3 only", rest)
		}
		// Pruning never reuses sequence numbers.
		mustNil(t, s.AppendRevocations(ctx, []string{"s4"}, base.Add(2*time.Minute)))
		newer, err := s.RevocationsAfter(ctx, last, 0)
		mustNil(t, err)
		if len(newer) != 1 || newer[0].SessionID != "s4" {
			t.Errorf("after %d: %+v, want s4", last, newer)
		}
	}},
	{"Leases/AcquireRenewExpireRelease", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		ttl := 10 * time.Second
		steps := []struct {
			name   string
			holder string
			at     time.Duration
			want   bool
		}{
			{"free lease is taken", "a", 0, true},
			{"held lease is refused", "b", time.Second, false},
			{"holder renews", "a", 5 * time.Second, true},
			{"renewal extended the expiry", "b", 14 * time.Second, false},
			{"expired lease is taken over", "b", 15 * time.Second, true},
			{"old holder is now refused", "a", 16 * time.Second, false},
		}
		for _, st := range steps {
			got, err := s.AcquireLease(ctx, "job", st.holder, base.Add(st.at), ttl)
			mustNil(t, err)
			if got != st.want {
				t.Errorf("%s: AcquireLease(%s) = %v, want %v", st.name, st.holder, got, st.want)
			}
		}
		// Leases are independent by name.
		ok, err := s.AcquireLease(ctx, "other", "a", base.Add(16*time.Second), ttl)
		mustNil(t, err)
		if !ok {
			t.Error("a second lease name was not free")
		}
		mustNil(t, s.ReleaseLease(ctx, "job", "a")) // not the holder: no effect
		ok, err = s.AcquireLease(ctx, "job", "a", base.Add(17*time.Second), ttl)
		mustNil(t, err)
		if ok {
			t.Error("release by a non-holder freed the lease")
		}
		mustNil(t, s.ReleaseLease(ctx, "job", "b"))
		ok, err = s.AcquireLease(ctx, "job", "a", base.Add(17*time.Second), ttl)
		mustNil(t, err)
		if !ok {
			t.Error("released lease could not be taken")
		}
	}},
	{"Leases/ConcurrentAcquireHasOneWinner", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		const n = 8
		var wg sync.WaitGroup
		var mu sync.Mutex
		winners := 0
		for i := range n {
			wg.Go(func() {
				ok, err := s.AcquireLease(ctx, "leader", fmt.Sprintf("w%d", i), base, time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					mu.Lock()
					winners++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if winners != 1 {
			t.Errorf("%d holders of one lease, want 1", winners)
		}
	}},
	{"Outbox/ClaimDeliverRetry", func(t *testing.T, s store.Store) {
		ctx := t.Context()
		msgs := []model.OutboxMessage{
			{ID: "m1", Kind: model.OutboxWebhook, Target: "https://hooks.example/1", Body: `{"a":1}`, CreatedAt: base},
			{ID: "m2", Kind: model.OutboxMail, Target: "alice@example.com", Subject: "Hi", Body: "text", CreatedAt: base.Add(time.Second)},
			{ID: "m3", Kind: model.OutboxWebhook, Target: "https://hooks.example/3", CreatedAt: base, NextAttemptAt: base.Add(time.Hour)},
		}
		for _, m := range msgs {
			mustNil(t, s.EnqueueOutbox(ctx, m))
		}
		mustErr(t, s.EnqueueOutbox(ctx, msgs[0]), store.ErrConflict)

		got, err := s.ClaimOutbox(ctx, base.Add(time.Minute), 30*time.Second, 10)
		mustNil(t, err)
		var ids []string
		for _, m := range got {
			ids = append(ids, m.ID)
		}
		checkNames(t, "claimed", ids, []string{"m1", "m2"}) // m3 is not due
		if got[1].Subject != "Hi" || got[1].Body != "text" || got[1].Kind != model.OutboxMail {
			t.Errorf("claimed m2 = %+v", got[1])
		}
		checkTime(t, "CreatedAt", got[0].CreatedAt, base)

		// Claimed messages are not handed out again while being delivered.
		again, err := s.ClaimOutbox(ctx, base.Add(time.Minute+time.Second), 30*time.Second, 10)
		mustNil(t, err)
		if len(again) != 0 {
			t.Errorf("claimed twice: %+v", again)
		}

		mustNil(t, s.MarkOutboxDelivered(ctx, "m1", base.Add(time.Minute)))
		mustNil(t, s.MarkOutboxFailed(ctx, "m2", 1, base.Add(2*time.Minute), "connection refused", false))
		mustErr(t, s.MarkOutboxDelivered(ctx, "nope", base), store.ErrNotFound)

		m2, err := s.GetOutbox(ctx, "m2")
		mustNil(t, err)
		if m2.Attempts != 1 || m2.LastError != "connection refused" || m2.Dead {
			t.Errorf("m2 after failure = %+v", m2)
		}
		checkTime(t, "NextAttemptAt", m2.NextAttemptAt, base.Add(2*time.Minute))

		later, err := s.ClaimOutbox(ctx, base.Add(3*time.Minute), 30*time.Second, 10)
		mustNil(t, err)
		if len(later) != 1 || later[0].ID != "m2" {
			t.Fatalf("retry claim = %+v, want m2 (m1 delivered)", later)
		}
		mustNil(t, s.MarkOutboxFailed(ctx, "m2", 2, base.Add(4*time.Minute), "gave up", true))
		dead, err := s.ClaimOutbox(ctx, base.Add(2*time.Hour), 30*time.Second, 10)
		mustNil(t, err)
		if len(dead) != 1 || dead[0].ID != "m3" {
			t.Errorf("claim after m2 died = %+v, want m3 only", dead)
		}

		n, err := s.DeleteOutboxBefore(ctx, base.Add(time.Hour))
		mustNil(t, err)
		if n != 2 {
			t.Errorf("DeleteOutboxBefore removed %d, want 2 (delivered m1, dead m2; m3 pending)", n)
		}
		_, err = s.GetOutbox(ctx, "m3")
		mustNil(t, err)
	}},
}
