package module

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net/url"

	"github.com/caddyserver/caddy/v2"

	"github.com/seed5911dcdf/caddy-better-auth/invalidation"
)

// Invalidation configures invalidations shared between sidecar replicas
// through Redis pub/sub. Only tags cross Redis: SHA-256 digests of
// credentials and session tokens, user ids, "organization". Redis being
// down never holds a request back: each replica keeps its own cache and
// stale time, and sharing resumes when Redis is back.
type Invalidation struct {
	// URL is redis://[user:password@]host:port/db, or rediss:// for TLS.
	URL string `json:"url"`
	// Password overrides the URL's.
	Password string `json:"password,omitempty"`
	// TLS turns TLS on (rediss:// implies it).
	TLS                   bool `json:"tls,omitempty"`
	TLSInsecureSkipVerify bool `json:"tls_insecure_skip_verify,omitempty"`
	// Channel is the pub/sub channel, default caddy-better-auth:invalidate.
	Channel string `json:"channel,omitempty"`
}

func (inv *Invalidation) validate() error {
	if inv == nil {
		return nil
	}
	u, err := url.Parse(inv.URL)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix") {
		return errors.New("better_auth: invalidation must be a redis:// or rediss:// URL")
	}
	if inv.TLSInsecureSkipVerify && !inv.TLS && u.Scheme != "rediss" {
		return errors.New("better_auth: invalidation: tls_insecure_skip_verify needs tls or rediss://")
	}
	return nil
}

// buses keeps each cache's Redis bus across config reloads, like the cache.
var buses = caddy.NewUsagePool()

func (h *Handler) provisionBus() error {
	if h.Invalidation == nil {
		return nil
	}
	inv := h.Invalidation
	// A changed password or TLS setting is a new bus (and connection).
	pw := sha256.Sum256([]byte(inv.Password))
	h.busKey = fmt.Sprintf("%s|%s|%s|%t|%t|%x", h.poolKey, inv.URL, inv.Channel, inv.TLS, inv.TLSInsecureSkipVerify, pw)
	c := h.cache
	logger := h.logger.Named("invalidation")
	b, _, err := buses.LoadOrNew(h.busKey, func() (caddy.Destructor, error) {
		return invalidation.New(invalidation.Options{
			URL: inv.URL, Password: inv.Password, TLS: inv.TLS,
			TLSInsecureSkipVerify: inv.TLSInsecureSkipVerify, Channel: inv.Channel,
			// Invalidations may have been missed while cut off: start over
			// rather than serve a session signed out elsewhere.
			OnReconnect: c.InvalidateAll,
		}, logger, func(tags []string) {
			c.Invalidate(tags...)
			metrics.invalidations.WithLabelValues("remote").Inc()
		})
	})
	if err != nil {
		return fmt.Errorf("better_auth invalidation: %v", err)
	}
	h.bus = b.(*invalidation.Bus)
	return nil
}

// invalidate drops the entries carrying any of the tags here, then tells
// the other replicas (never waiting on Redis).
func (h *Handler) invalidate(tags []string) {
	if len(tags) == 0 {
		return
	}
	h.cache.Invalidate(tags...)
	metrics.invalidations.WithLabelValues("local").Inc()
	if h.bus != nil {
		h.bus.Publish(tags)
	}
}
