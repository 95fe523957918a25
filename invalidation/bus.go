// Package invalidation carries cache invalidations between the replicas of
// the sidecar over Redis pub/sub, so that a sign-out seen by one replica
// drops the cached session on all of them.
//
// The bus is best effort and never in a request's way: Publish only queues,
// one goroutine sends, another receives and applies. Only the tags cross
// Redis (digests and ids, see wire.go), never a token or session data.
//
// When Redis is unreachable the replica keeps serving from its own cache.
// The first failure of an outage is logged as a warning, the rest at debug
// level, and its end at info; both goroutines retry with a capped, jittered
// exponential backoff (100ms to 5s). Invalidations published while a
// replica is cut off are lost to it (Redis pub/sub keeps no history), and
// a replica's own invalidations that could not be sent are lost to the
// others: replicas then rely on their stale time. Options.OnReconnect is
// called in both cases (this replica's subscription is back, or another
// replica's next message says it lost some), so the caller may drop more,
// up to its whole cache, instead of waiting for the stale time.
//
// go-redis writes a line of its own to the standard logger when its pool
// fails to dial (at most a couple per outage here: the pool then answers
// from its last dial error until a background probe succeeds).
package invalidation

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"go.uber.org/zap"
)

// DefaultChannel is the Redis channel used when Options.Channel is empty.
const DefaultChannel = "caddy-better-auth:invalidate"

// Options of a Redis bus.
type Options struct {
	// URL is redis://[user:password@]host:port/db, or rediss:// for TLS
	// (unix:///path also works). go-redis' query parameters (dial_timeout,
	// read_timeout, ...) are honoured.
	URL string
	// Password overrides the URL's.
	Password string
	// TLS turns TLS on; rediss:// implies it.
	TLS                   bool
	TLSInsecureSkipVerify bool
	// Channel is the pub/sub channel; default DefaultChannel. Replicas
	// sharing a cache's meaning must share a channel.
	Channel string
	// OnReconnect, if set, is called whenever this replica may have missed
	// invalidations: when its subscription is live again after being lost
	// (or after the first attempts failed), and when another replica
	// reports it lost some of its own. It runs on the receiving goroutine
	// before any later message is applied; it must not block for long.
	OnReconnect func()
}

// Stats is a snapshot of the bus's counters.
type Stats struct {
	Published     uint64 // messages sent to Redis
	PublishedTags uint64 // tags in them
	Received      uint64 // messages from other replicas applied
	ReceivedTags  uint64 // tags in them
	Dropped       uint64 // tags that never reached Redis: queue full, failed PUBLISH, too long, closed
	PublishErrors uint64 // failed PUBLISH commands
	Malformed     uint64 // incoming messages ignored as invalid
	Reconnects    uint64 // times the subscription came back after being lost
	Connected     bool   // the subscription is live
}

// Tuning. The queue bounds memory while Redis is slow or away; the backoff
// bounds how hard a replica knocks on a Redis that is down.
const (
	queueLen    = 1024
	minBackoff  = 100 * time.Millisecond
	maxBackoff  = 5 * time.Second
	stableAfter = 30 * time.Second // a connection that lived this long resets the backoff
	opTimeout   = 3 * time.Second  // one PUBLISH, one subscribe
	closeFlush  = time.Second      // Close sends what is queued within this
)

// healthInterval is how long a subscription may be silent before it is
// pinged; as long again without the pong and it is taken for dead (a
// half-open connection the socket never reports). A variable for tests.
var healthInterval = 10 * time.Second

// Bus publishes this replica's invalidations and applies other replicas'.
type Bus struct {
	client      *redis.Client
	channel     string
	id          string
	apply       func([]string)
	onReconnect func()
	logger      *zap.Logger
	addr        string

	queue chan []string
	ctx   context.Context // ends at Close
	stop  context.CancelFunc
	// sendCtx outlives ctx by closeFlush, so what is queued or in flight
	// at Close still goes out.
	sendCtx  context.Context
	sendStop context.CancelFunc
	wg       sync.WaitGroup
	once     sync.Once

	closed    atomic.Bool
	connected atomic.Bool
	lost      atomic.Bool // own tags dropped since the last message sent

	psMu sync.Mutex
	ps   *redis.PubSub // the live subscription, closed by Close to unblock it

	healthMu sync.Mutex
	subDown  bool
	pubDown  bool
	downAt   time.Time
	failures uint64

	published, publishedTags, received, receivedTags atomic.Uint64
	dropped, publishErrors, malformed, reconnects    atomic.Uint64
}

// New connects lazily: it never blocks on Redis and never fails because
// Redis is down (only on a bad URL or options). apply is called, on one
// goroutine, with the tags of every invalidation another replica published.
func New(opts Options, logger *zap.Logger, apply func(tags []string)) (*Bus, error) {
	if apply == nil {
		return nil, errors.New("invalidation: apply func is required")
	}
	if opts.URL == "" {
		return nil, errors.New("invalidation: redis URL is required")
	}
	ro, err := redis.ParseURL(opts.URL)
	if err != nil {
		// A *url.Error repeats the URL, password included: keep only its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("invalidation: bad redis URL: %v", err)
	}
	if opts.Password != "" {
		ro.Password = opts.Password
	}
	if opts.TLS && ro.TLSConfig == nil {
		host, _, _ := net.SplitHostPort(ro.Addr)
		ro.TLSConfig = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	if opts.TLSInsecureSkipVerify {
		if ro.TLSConfig == nil {
			return nil, errors.New("invalidation: TLSInsecureSkipVerify without TLS (use rediss:// or TLS)")
		}
		ro.TLSConfig.InsecureSkipVerify = true
	}
	if ro.DialTimeout == 0 {
		ro.DialTimeout = 2 * time.Second
	}
	if ro.ReadTimeout == 0 {
		ro.ReadTimeout = opTimeout
	}
	if ro.WriteTimeout == 0 {
		ro.WriteTimeout = opTimeout
	}
	ro.DialerRetries = 1 // the bus has its own backoff
	ro.MaxRetries = 1    // one retry covers a pooled connection a restart broke
	ro.PoolSize = 2      // one sender; pub/sub has its own connection
	ro.ContextTimeoutEnabled = true
	ro.DisableIdentity = true
	ro.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}

	if logger == nil {
		logger = zap.NewNop()
	}
	channel := opts.Channel
	if channel == "" {
		channel = DefaultChannel
	}
	var raw [instanceIDBytes]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, fmt.Errorf("invalidation: instance id: %v", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	sendCtx, sendStop := context.WithCancel(context.Background())
	b := &Bus{
		client:      redis.NewClient(ro),
		channel:     channel,
		id:          hex.EncodeToString(raw[:]),
		apply:       apply,
		onReconnect: opts.OnReconnect,
		logger:      logger,
		addr:        ro.Addr,
		queue:       make(chan []string, queueLen),
		ctx:         ctx,
		stop:        stop,
		sendCtx:     sendCtx,
		sendStop:    sendStop,
	}
	b.wg.Add(2)
	go b.sender()
	go b.subscriber()
	return b, nil
}

// Publish sends tags to the other replicas without blocking the caller. It
// queues them; when the queue is full the oldest queued invalidation is
// dropped (its entries are the likeliest to have reached their stale time)
// and counted. A tag longer than 1 KiB cannot be sent and is counted as
// dropped; empty tags are ignored. The caller may reuse tags afterwards.
// A nil *Bus publishes nothing.
func (b *Bus) Publish(tags []string) {
	if b == nil || len(tags) == 0 {
		return
	}
	if b.closed.Load() {
		b.dropped.Add(uint64(len(tags)))
		return
	}
	out := make([]string, 0, len(tags))
	for _, t := range tags {
		if len(t) == 0 {
			continue
		}
		if len(t) > maxTagBytes {
			b.dropped.Add(1)
			b.lost.Store(true)
			continue
		}
		out = append(out, t)
	}
	if len(out) == 0 {
		return
	}
	for {
		select {
		case b.queue <- out:
			return
		default:
		}
		select {
		case old := <-b.queue:
			b.dropped.Add(uint64(len(old)))
			b.lost.Store(true)
		default:
		}
	}
}

// Stats returns a snapshot of the counters (zero for a nil *Bus).
func (b *Bus) Stats() Stats {
	if b == nil {
		return Stats{}
	}
	return Stats{
		Published:     b.published.Load(),
		PublishedTags: b.publishedTags.Load(),
		Received:      b.received.Load(),
		ReceivedTags:  b.receivedTags.Load(),
		Dropped:       b.dropped.Load(),
		PublishErrors: b.publishErrors.Load(),
		Malformed:     b.malformed.Load(),
		Reconnects:    b.reconnects.Load(),
		Connected:     b.connected.Load(),
	}
}

// Connected reports whether the subscription is live.
func (b *Bus) Connected() bool { return b != nil && b.connected.Load() }

// Close stops the bus. What is still queued gets up to a second to reach
// Redis. It is safe to call more than once, from any goroutine, and on a
// nil *Bus.
func (b *Bus) Close() error {
	if b == nil {
		return nil
	}
	b.once.Do(func() {
		b.closed.Store(true)
		b.stop()
		flushEnd := time.AfterFunc(closeFlush, b.sendStop)
		defer flushEnd.Stop()
		defer b.sendStop()
		b.psMu.Lock()
		if b.ps != nil {
			_ = b.ps.Close()
		}
		b.psMu.Unlock()
		b.wg.Wait()
		b.connected.Store(false)
		_ = b.client.Close()
		for { // what a racing Publish queued after the sender left
			select {
			case t := <-b.queue:
				b.dropped.Add(uint64(len(t)))
				continue
			default:
			}
			break
		}
	})
	return nil
}

// Destruct lets a caddy.UsagePool close the bus when its last config goes.
func (b *Bus) Destruct() error { return b.Close() }

// sender publishes what Publish queued, merging queued invalidations into
// messages of up to maxTags tags and maxMessageBytes.
func (b *Bus) sender() {
	defer b.wg.Done()
	var pending []string
	failures := 0
	for {
		if len(pending) == 0 {
			select {
			case <-b.ctx.Done():
				b.flush(nil)
				return
			case pending = <-b.queue:
			}
		}
		var batch []string
		batch, pending = b.fill(pending)
		if err := b.send(batch); err != nil {
			failures++
			if !b.sleep(backoff(failures)) {
				b.flush(pending)
				return
			}
			continue
		}
		failures = 0
	}
}

// fill takes tags from pending, then from the queue, while they fit in one
// message; it returns the message's tags and what is left over.
func (b *Bus) fill(pending []string) (batch, rest []string) {
	size := envelopeBytes
	for {
		for len(pending) > 0 {
			n := encodedTagBytes(pending[0])
			if len(batch) == maxTags || size+n > maxMessageBytes {
				return batch, pending
			}
			batch = append(batch, pending[0])
			size += n
			pending = pending[1:]
		}
		select {
		case pending = <-b.queue:
		default:
			return batch, nil
		}
	}
}

// send publishes one message; a failure drops its tags.
func (b *Bus) send(tags []string) error {
	gap := b.lost.Swap(false)
	payload, err := encode(b.id, tags, gap)
	if err == nil {
		cctx, cancel := context.WithTimeout(b.sendCtx, opTimeout)
		err = b.client.Publish(cctx, b.channel, payload).Err()
		cancel()
	}
	if err != nil {
		b.lost.Store(true)
		b.publishErrors.Add(1)
		b.dropped.Add(uint64(len(tags)))
		b.markDown(&b.pubDown, "publish", err)
		return err
	}
	b.published.Add(1)
	b.publishedTags.Add(uint64(len(tags)))
	b.markUp(false)
	return nil
}

// flush sends what is still queued when the bus closes, until the first
// failure or closeFlush after Close; the rest is dropped.
func (b *Bus) flush(pending []string) {
	failed := false
	for {
		if len(pending) == 0 {
			select {
			case pending = <-b.queue:
			default:
				return
			}
		}
		if failed || b.sendCtx.Err() != nil {
			b.dropped.Add(uint64(len(pending)))
			pending = nil
			continue
		}
		var batch []string
		batch, pending = b.fill(pending)
		failed = b.send(batch) != nil
	}
}

// subscriber keeps one subscription live and applies what arrives. It
// makes a new PubSub after any failure, so it recovers from a broken
// connection, a Redis restart, and a half-open connection (found by the
// ping health check) alike, with a capped, jittered exponential backoff.
func (b *Bus) subscriber() {
	defer b.wg.Done()
	failures := 0
	missed := false // a failure happened since the last live subscription
	for b.ctx.Err() == nil {
		ps := b.client.Subscribe(b.ctx)
		b.psMu.Lock()
		if b.closed.Load() {
			b.psMu.Unlock()
			_ = ps.Close()
			return
		}
		b.ps = ps
		b.psMu.Unlock()

		liveAt, err := b.receive(ps, &missed)
		b.psMu.Lock()
		b.ps = nil
		b.psMu.Unlock()
		_ = ps.Close()
		b.connected.Store(false)
		if b.ctx.Err() != nil {
			return
		}
		missed = true
		b.markDown(&b.subDown, "subscribe", err)
		if !liveAt.IsZero() && time.Since(liveAt) > stableAfter {
			failures = 0
		}
		failures++
		if !b.sleep(backoff(failures)) {
			return
		}
	}
}

// receive runs one subscription until it fails; liveAt is when Redis
// confirmed it (zero if it never did).
func (b *Bus) receive(ps *redis.PubSub, missed *bool) (liveAt time.Time, err error) {
	sctx, cancel := context.WithTimeout(b.ctx, opTimeout)
	err = ps.Subscribe(sctx, b.channel)
	cancel()
	if err != nil {
		return liveAt, err
	}
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(b.ctx, healthInterval)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !pinged && !liveAt.IsZero() {
				// Silence: ask for a pong; a second silence means the
				// connection is dead even if the socket says nothing.
				pctx, cancel := context.WithTimeout(b.ctx, opTimeout)
				err = ps.Ping(pctx)
				cancel()
				if err != nil {
					return liveAt, err
				}
				pinged = true
				continue
			}
			return liveAt, err
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" && m.Channel == b.channel && liveAt.IsZero() {
				liveAt = time.Now()
				b.connected.Store(true)
				b.markUp(true)
				if *missed {
					*missed = false
					b.reconnects.Add(1)
					b.resync()
				}
			}
		case *redis.Message:
			b.handle(m.Payload)
		}
	}
}

// handle applies one incoming message, ignoring the bus's own.
func (b *Bus) handle(payload string) {
	from, tags, gap, err := decode(payload)
	if err != nil {
		n := b.malformed.Add(1)
		if n == 1 || n%1000 == 0 {
			b.logger.Warn("invalidation bus ignored a malformed message",
				zap.String("channel", b.channel), zap.Uint64("malformed_total", n), zap.Error(err))
		}
		return
	}
	if from == b.id {
		return
	}
	if gap {
		b.resync()
	}
	b.safely("apply", func() { b.apply(tags) })
	b.received.Add(1)
	b.receivedTags.Add(uint64(len(tags)))
}

func (b *Bus) resync() {
	if b.onReconnect != nil {
		b.safely("OnReconnect", b.onReconnect)
	}
}

// safely keeps a panicking callback from ending the subscription.
func (b *Bus) safely(what string, f func()) {
	defer func() {
		if r := recover(); r != nil {
			b.logger.Error("invalidation bus callback panicked", zap.String("callback", what), zap.Any("panic", r))
		}
	}()
	f()
}

// markDown records a failure of the publisher or the subscriber. The first
// failure of an outage is logged as a warning; the rest of it at debug.
func (b *Bus) markDown(flag *bool, part string, err error) {
	b.healthMu.Lock()
	defer b.healthMu.Unlock()
	if b.closed.Load() {
		return
	}
	b.failures++
	*flag = true
	if b.downAt.IsZero() {
		b.downAt = time.Now()
		b.logger.Warn("invalidation bus: Redis unreachable; replicas fall back on their stale time until it is back (further failures of this outage are logged at debug level)",
			zap.String("addr", b.addr), zap.String("channel", b.channel), zap.String("failed", part), zap.Error(err))
		return
	}
	if c := b.logger.Check(zap.DebugLevel, "invalidation bus: Redis still unreachable"); c != nil {
		c.Write(zap.String("failed", part), zap.Error(err))
	}
}

// markUp ends an outage: a live subscription shows Redis is back for
// both sides; a successful PUBLISH only for the publisher's.
func (b *Bus) markUp(subscribed bool) {
	b.healthMu.Lock()
	defer b.healthMu.Unlock()
	if subscribed {
		b.subDown, b.pubDown = false, false
	} else {
		b.pubDown = false
	}
	if b.downAt.IsZero() || b.subDown || b.pubDown {
		return
	}
	b.logger.Info("invalidation bus: Redis reachable again; invalidations other replicas published meanwhile were missed",
		zap.String("addr", b.addr), zap.String("channel", b.channel),
		zap.Duration("outage", time.Since(b.downAt)), zap.Uint64("failures", b.failures))
	b.downAt, b.failures = time.Time{}, 0
}

// sleep waits d unless the bus closes first.
func (b *Bus) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-b.ctx.Done():
		return false
	}
}

// backoff is the wait after the n-th failure in a row: exponential from
// minBackoff, capped at maxBackoff, with ±20% jitter so replicas spread out.
func backoff(n int) time.Duration {
	d := maxBackoff
	if n < 16 {
		d = min(minBackoff<<(n-1), maxBackoff)
	}
	return d - d/5 + mrand.N(2*d/5+1)
}
