package cache

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// revokeChannel carries revoked session ids, comma-separated (ids are hex
// SHA-256 digests, so no escaping is needed).
const revokeChannel = "session-revoked"

// maxPublish bounds one message; RevokeUser on a user with very many
// sessions is split into several.
const maxPublish = 500

// PublishRevocations tells every replica's subscriber that the sessions
// ended. It is skipped at once while Redis is unhealthy: the store-backed
// feed, which every replica also reads, carries the revocation then.
func (c *Client) PublishRevocations(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	if !c.Healthy() {
		return errUnhealthy
	}
	for len(ids) > 0 {
		n := min(len(ids), maxPublish)
		if err := c.rdb.Publish(ctx, c.Key(revokeChannel), strings.Join(ids[:n], ",")).Err(); err != nil {
			c.failed(err)
			return err
		}
		ids = ids[n:]
	}
	return nil
}

var errUnhealthy = errors.New("cache: redis is unhealthy")

// SubscribeRevocations calls fn with the ids of every revocation published
// by any replica (this one included) until ctx ends. go-redis resubscribes
// by itself after a disconnect; messages published while disconnected are
// lost, which is why replicas also read the store-backed feed.
func (c *Client) SubscribeRevocations(ctx context.Context, fn func(ids []string)) {
	ps := c.rdb.Subscribe(ctx, c.Key(revokeChannel))
	defer func() { _ = ps.Close() }()
	// The health check pings the subscription connection so a silently
	// dead one (Redis restarted behind a NAT) is noticed and replaced.
	ch := ps.Channel(redis.WithChannelHealthCheckInterval(5*time.Second), redis.WithChannelSendTimeout(time.Second))
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			if m.Payload == "" {
				continue
			}
			fn(strings.Split(m.Payload, ","))
		}
	}
}
