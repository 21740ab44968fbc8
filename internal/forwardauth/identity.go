package forwardauth

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-sso/gatehouse/internal/model"
)

// HeaderFamily is a set of identity headers sent to apps on 200.
type HeaderFamily int

const (
	// RemoteHeaders are Authelia's: Remote-User, Remote-Groups (comma
	// separated), Remote-Email, Remote-Name.
	RemoteHeaders HeaderFamily = 1 << iota
	// AuthentikHeaders are the outpost's: X-authentik-username, -groups
	// ("|" separated), -email, -name, -uid.
	AuthentikHeaders
	// AllHeaders is the default.
	AllHeaders = RemoteHeaders | AuthentikHeaders
)

// identity is a user as forward auth presents it, with the header values
// built once per cache fill instead of once per request.
type identity struct {
	userID   string
	username string
	groups   []string
	disabled bool
	remote   []headerValue
	authntk  []headerValue
	fetched  time.Time
}

type headerValue struct {
	name string // canonical form, so it can be assigned to the map directly
	val  []string
}

func newIdentity(u model.User, groups []string, now time.Time) *identity {
	id := &identity{userID: u.ID, username: u.Username, groups: groups, disabled: u.Disabled, fetched: now}
	add := func(list *[]headerValue, name, v string) {
		if v != "" { // an empty header is no header: proxies drop it anyway
			*list = append(*list, headerValue{http.CanonicalHeaderKey(name), []string{v}})
		}
	}
	add(&id.remote, "Remote-User", u.Username)
	add(&id.remote, "Remote-Groups", strings.Join(groups, ","))
	add(&id.remote, "Remote-Email", u.Email)
	add(&id.remote, "Remote-Name", u.DisplayName)
	add(&id.authntk, "X-authentik-username", u.Username)
	add(&id.authntk, "X-authentik-groups", strings.Join(groups, "|"))
	add(&id.authntk, "X-authentik-email", u.Email)
	add(&id.authntk, "X-authentik-name", u.DisplayName)
	add(&id.authntk, "X-authentik-uid", u.ID)
	return id
}

// set writes the identity headers of the families onto h.
func (id *identity) set(h http.Header, f HeaderFamily) {
	if f&RemoteHeaders != 0 {
		for _, hv := range id.remote {
			h[hv.name] = hv.val
		}
	}
	if f&AuthentikHeaders != 0 {
		for _, hv := range id.authntk {
			h[hv.name] = hv.val
		}
	}
}

// identities caches users and their group names for a short TTL, so the
// allow path does no query. Changes made in this process are dropped at
// once through Forget; others show within the TTL.
type identities struct {
	dir Directory
	ttl time.Duration
	max int
	now func() time.Time

	mu sync.RWMutex
	m  map[string]*identity
}

func (c *identities) get(ctx context.Context, userID string) (*identity, error) {
	now := c.now()
	c.mu.RLock()
	id, ok := c.m[userID]
	c.mu.RUnlock()
	if ok && now.Sub(id.fetched) < c.ttl {
		return id, nil
	}
	u, err := c.dir.GetUser(ctx, userID)
	if err != nil {
		return nil, err
	}
	groups, err := c.dir.GroupNames(ctx, userID)
	if err != nil {
		return nil, err
	}
	id = newIdentity(u, groups, now)
	c.mu.Lock()
	if len(c.m) >= c.max {
		for k, v := range c.m {
			if now.Sub(v.fetched) >= c.ttl {
				delete(c.m, k)
			}
		}
	}
	if len(c.m) < c.max {
		c.m[userID] = id
	}
	c.mu.Unlock()
	return id, nil
}

func (c *identities) forget(userID string) {
	c.mu.Lock()
	delete(c.m, userID)
	c.mu.Unlock()
}
