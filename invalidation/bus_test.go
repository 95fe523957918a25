package invalidation

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// Generous bounds: they only catch a hang, they time nothing.
const (
	within   = 30 * time.Second
	noBlock  = 10 * time.Second // for 1000 Publish calls that must not wait on Redis
	settleIn = 2 * time.Second  // to let a message that must not arrive show up
)

// recorder is an apply func that keeps what it was given.
type recorder struct {
	mu    sync.Mutex
	calls [][]string
}

func (r *recorder) apply(tags []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, append([]string(nil), tags...))
}

func (r *recorder) get() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]string(nil), r.calls...)
}

func (r *recorder) flat() []string {
	var out []string
	for _, c := range r.get() {
		out = append(out, c...)
	}
	return out
}

// contains reports whether some call held tag.
func (r *recorder) contains(tag string) bool {
	for _, t := range r.flat() {
		if t == tag {
			return true
		}
	}
	return false
}

type replica struct {
	bus        *Bus
	rec        *recorder
	logs       *observer.ObservedLogs
	reconnects atomic.Int64
}

func newReplica(t *testing.T, opts Options) *replica {
	t.Helper()
	r := &replica{rec: &recorder{}}
	core, logs := observer.New(zapcore.DebugLevel)
	r.logs = logs
	opts.OnReconnect = func() { r.reconnects.Add(1) }
	b, err := New(opts, zap.New(core), r.rec.apply)
	if err != nil {
		t.Fatal(err)
	}
	r.bus = b
	t.Cleanup(func() { _ = b.Close() })
	return r
}

func (r *replica) warns() int { return r.logs.FilterLevelExact(zapcore.WarnLevel).Len() }

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitConnected(t *testing.T, rs ...*replica) {
	t.Helper()
	for i, r := range rs {
		waitFor(t, fmt.Sprintf("replica %d to subscribe", i), r.bus.Connected)
	}
}

// digestTag is a tag the way the module makes one: a kind, a NUL, and a
// 32-byte SHA-256 digest (binary, so NULs and bytes >0x7f occur).
func digestTag(kind byte, secret string) string {
	d := sha256.Sum256([]byte(secret))
	return string([]byte{kind, 0}) + string(d[:])
}

// binaryTags are tags whose bytes are as hostile as a digest's can be.
func binaryTags() []string {
	raw := make([]byte, 32)
	for i := range raw {
		raw[i] = byte(255 - i*8) // 0xff, 0xf7, ... with a 0x00-free start
	}
	raw[5], raw[17] = 0, '"'
	return []string{
		"c\x00" + string(raw),
		digestTag('t', "some session token"),
		"u\x00user-42",
		"o\x00*",
	}
}

// publishUntil publishes fresh tags from a until cond holds (a message sent
// while the other side is still resubscribing is lost, by design).
func publishUntil(t *testing.T, a *replica, what string, cond func(tag string) bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for i := 0; ; i++ {
		tag := fmt.Sprintf("u\x00probe-%d-%d", time.Now().UnixNano(), i)
		a.bus.Publish([]string{tag})
		for end := time.Now().Add(200 * time.Millisecond); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
			if cond(tag) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
	}
}

// publishMany calls Publish n times and fails if that does not finish in
// noBlock: Publish must never wait on Redis.
func publishMany(t *testing.T, b *Bus, n int) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			b.Publish([]string{fmt.Sprintf("u\x00user-%d", i), digestTag('t', fmt.Sprint(i))})
		}
	}()
	select {
	case <-done:
	case <-time.After(noBlock):
		t.Fatalf("%d Publish calls did not return within %v: Publish blocks on Redis", n, noBlock)
	}
}

func TestReplicasShareInvalidations(t *testing.T) {
	srv := startRedis(t, "")
	a := newReplica(t, Options{URL: srv.url()})
	b := newReplica(t, Options{URL: srv.url()})
	waitConnected(t, a, b)

	sent := binaryTags()
	a.bus.Publish(sent)
	waitFor(t, "B to apply A's tags", func() bool { return len(b.rec.get()) > 0 })
	if got := b.rec.get(); !reflect.DeepEqual(got, [][]string{sent}) {
		t.Fatalf("B applied %q, want exactly %q", got, sent)
	}

	// A's own message reached A's subscription before B's answer does:
	// if A's first apply is B's message, A ignored its own.
	back := []string{digestTag('c', "credential of B's caller"), "u\x00user-7"}
	b.bus.Publish(back)
	waitFor(t, "A to apply B's tags", func() bool { return len(a.rec.get()) > 0 })
	time.Sleep(100 * time.Millisecond)
	if got := a.rec.get(); !reflect.DeepEqual(got, [][]string{back}) {
		t.Fatalf("A applied %q, want only B's %q (never its own)", got, back)
	}
	if got := b.rec.get(); len(got) != 1 {
		t.Fatalf("B applied its own message too: %q", got)
	}

	sa, sb := a.bus.Stats(), b.bus.Stats()
	if sa.Published != 1 || sa.PublishedTags != uint64(len(sent)) || sa.Received != 1 || sa.ReceivedTags != uint64(len(back)) {
		t.Errorf("A stats %+v", sa)
	}
	if sb.Published != 1 || sb.Received != 1 || sb.Dropped != 0 || sb.Malformed != 0 || sb.PublishErrors != 0 || !sb.Connected {
		t.Errorf("B stats %+v", sb)
	}
	if sa.Reconnects != 0 || a.reconnects.Load() != 0 {
		t.Errorf("no outage, yet OnReconnect ran %d times (stats %d)", a.reconnects.Load(), sa.Reconnects)
	}
	if a.warns() != 0 || b.warns() != 0 {
		t.Errorf("warnings without an outage: %v %v", a.logs.All(), b.logs.All())
	}
}

func TestLargeInvalidationsAreSplitAndMerged(t *testing.T) {
	srv := startRedis(t, "")
	a := newReplica(t, Options{URL: srv.url(), Channel: "split-test"})
	b := newReplica(t, Options{URL: srv.url(), Channel: "split-test"})
	other := newReplica(t, Options{URL: srv.url()}) // another channel hears nothing
	waitConnected(t, a, b, other)

	var want []string
	big := make([]string, 3000) // more than one message holds
	for i := range big {
		big[i] = digestTag('t', fmt.Sprint("token-", i))
	}
	want = append(want, big...)
	a.bus.Publish(big)
	for i := range 500 { // many small ones: merged into few messages
		tag := fmt.Sprintf("u\x00user-%d", i)
		want = append(want, tag)
		a.bus.Publish([]string{tag})
	}
	long := "u\x00" + strings.Repeat("x", maxTagBytes) // too long to send
	a.bus.Publish([]string{long})

	waitFor(t, "B to apply every tag", func() bool { return len(b.rec.flat()) >= len(want) })
	if got := b.rec.flat(); !reflect.DeepEqual(got, want) {
		t.Fatalf("B applied %d tags, want %d in order", len(got), len(want))
	}
	for _, c := range b.rec.get() {
		if len(c) > maxTags {
			t.Fatalf("a message carried %d tags, above %d", len(c), maxTags)
		}
	}
	s := a.bus.Stats()
	if s.PublishedTags != uint64(len(want)) || s.Published < 3 || s.Dropped != 1 {
		t.Errorf("A stats %+v: want %d tags sent in 3 messages or more, the long tag dropped", s, len(want))
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(other.rec.get()); n != 0 {
		t.Errorf("a replica on another channel applied %d messages", n)
	}
}

func TestMessagesNeverCarryTokens(t *testing.T) {
	srv := startRedis(t, "")
	raw := redis.NewClient(&redis.Options{Addr: srv.addr()})
	defer raw.Close()
	ctx := context.Background()
	sub := raw.Subscribe(ctx, DefaultChannel)
	defer sub.Close()
	if _, err := sub.ReceiveTimeout(ctx, within); err != nil { // the subscribe confirmation
		t.Fatal(err)
	}
	a := newReplica(t, Options{URL: srv.url()})

	const token = "Yq3vKx81TOKENsEcReT0fAsession.SiGnAtUrE-part"
	cookie := "better-auth.session_token=" + token
	tags := []string{digestTag('t', token), digestTag('c', "cookie\x00"+cookie+"\x00authorization\x00")}
	a.bus.Publish(tags)

	msg, err := sub.ReceiveMessage(ctxWithin(t))
	if err != nil {
		t.Fatal(err)
	}
	p := msg.Payload
	for _, secret := range []string{token, "session.SiGnAtUrE", cookie,
		base64.StdEncoding.EncodeToString([]byte(token)), hex.EncodeToString([]byte(token))} {
		if strings.Contains(p, secret) {
			t.Fatalf("the message on Redis holds %q: %s", secret, p)
		}
	}
	from, got, gap, err := decode(p)
	if err != nil || from != a.bus.id || gap || !reflect.DeepEqual(got, tags) {
		t.Fatalf("decode(%s) = %q %q %v %v", p, from, got, gap, err)
	}
	if !strings.HasPrefix(p, `{"v":1,`) {
		t.Errorf("message does not start with its version: %s", p)
	}
}

func ctxWithin(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	t.Cleanup(cancel)
	return ctx
}

func TestMalformedMessagesAreIgnoredAndCounted(t *testing.T) {
	srv := startRedis(t, "")
	b := newReplica(t, Options{URL: srv.url()})
	waitConnected(t, b)
	raw := redis.NewClient(&redis.Options{Addr: srv.addr()})
	defer raw.Close()

	foreign := strings.Repeat("ab", instanceIDBytes)
	good := func(from string, tags ...string) string {
		p, err := encode(from, tags, false)
		if err != nil {
			t.Fatal(err)
		}
		return string(p)
	}
	tooMany := make([]string, maxTags+1)
	for i := range tooMany {
		tooMany[i] = "u\x00x"
	}
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	bad := []string{
		"",
		"not json",
		"\x00\xff\xfe",
		`[]`,
		`{"v":2,"from":"` + foreign + `","tags":["` + b64("u\x00a") + `"]}`,
		`{"from":"` + foreign + `","tags":["` + b64("u\x00a") + `"]}`,
		`{"v":1,"tags":["` + b64("u\x00a") + `"]}`,
		`{"v":1,"from":"short","tags":["` + b64("u\x00a") + `"]}`,
		`{"v":1,"from":"` + strings.ToUpper(foreign) + `","tags":["` + b64("u\x00a") + `"]}`,
		`{"v":1,"from":"` + foreign + `","tags":[]}`,
		`{"v":1,"from":"` + foreign + `"}`,
		`{"v":1,"from":"` + foreign + `","tags":["%%%not base64"]}`,
		`{"v":1,"from":"` + foreign + `","tags":["` + b64("u\x00a") + `",""]}`,
		`{"v":1,"from":"` + foreign + `","tags":[7]}`,
		`{"v":1,"from":"` + foreign + `","tags":["` + b64(strings.Repeat("x", maxTagBytes+1)) + `"]}`,
		good(foreign, tooMany...),
		good(foreign, "u\x00a") + strings.Repeat(" ", maxMessageBytes), // oversized
		`{"v":1,"from":"` + foreign + `","tags":["dTB4"]`,              // truncated
	}
	ctx := ctxWithin(t)
	for _, p := range bad {
		if err := raw.Publish(ctx, DefaultChannel, p).Err(); err != nil {
			t.Fatal(err)
		}
	}
	valid := []string{digestTag('t', "x"), "u\x00after-the-junk"}
	if err := raw.Publish(ctx, DefaultChannel, good(foreign, valid...)).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the valid message after the junk", func() bool { return len(b.rec.get()) > 0 })
	if got := b.rec.get(); !reflect.DeepEqual(got, [][]string{valid}) {
		t.Fatalf("applied %q, want only %q", got, valid)
	}
	s := b.bus.Stats()
	if s.Malformed != uint64(len(bad)) || s.Received != 1 || !s.Connected {
		t.Fatalf("stats %+v, want %d malformed, 1 received", s, len(bad))
	}
	if n := b.logs.FilterMessageSnippet("malformed").Len(); n != 1 {
		t.Errorf("%d log lines about malformed messages, want 1 (rate-limited)", n)
	}
}

func TestRedisOutageNeverBlocksAndBothSidesResume(t *testing.T) {
	srv := startRedis(t, "")
	a := newReplica(t, Options{URL: srv.url()})
	b := newReplica(t, Options{URL: srv.url()})
	waitConnected(t, a, b)
	publishUntil(t, a, "B to hear A before the outage", b.rec.contains)

	srv.stop()
	publishMany(t, a.bus, 1000)
	waitFor(t, "A to see the outage", func() bool {
		s := a.bus.Stats()
		return !s.Connected && s.PublishErrors > 0
	})
	waitFor(t, "B to see the outage", func() bool { return !b.bus.Connected() })
	publishMany(t, a.bus, 1000) // still not blocking, queue full or not
	time.Sleep(settleIn)        // several failed attempts, one warning
	s := a.bus.Stats()
	if s.Dropped == 0 || s.PublishErrors == 0 {
		t.Errorf("stats during the outage %+v: want dropped tags and publish errors", s)
	}
	if n := a.warns(); n != 1 {
		t.Errorf("A logged %d warnings for one outage, want 1: %v", n, a.logs.FilterLevelExact(zapcore.WarnLevel).All())
	}
	if n := b.warns(); n != 1 {
		t.Errorf("B logged %d warnings for one outage, want 1", n)
	}

	srv.start() // same port
	waitConnected(t, a, b)
	publishUntil(t, a, "B to hear A after the restart", b.rec.contains)
	publishUntil(t, b, "A to hear B after the restart", a.rec.contains)
	for name, r := range map[string]*replica{"A": a, "B": b} {
		st := r.bus.Stats()
		if st.Reconnects == 0 || r.reconnects.Load() == 0 {
			t.Errorf("%s: Reconnects %d, OnReconnect ran %d times: want both after the outage", name, st.Reconnects, r.reconnects.Load())
		}
		if r.logs.FilterMessageSnippet("reachable again").Len() == 0 {
			t.Errorf("%s logged no recovery", name)
		}
	}
}

func TestPassword(t *testing.T) {
	srv := startRedis(t, "s3cret-pass")
	withURL := newReplica(t, Options{URL: "redis://:s3cret-pass@" + srv.addr() + "/0"})
	withOpt := newReplica(t, Options{URL: "redis://:stale-password@" + srv.addr(), Password: "s3cret-pass"})
	waitConnected(t, withURL, withOpt)
	publishUntil(t, withURL, "the password replicas to share", withOpt.rec.contains)

	wrong := newReplica(t, Options{URL: srv.url(), Password: "wr0ng-Pa55word"})
	publishMany(t, wrong.bus, 1000)
	waitFor(t, "the wrong password to fail publishing", func() bool { return wrong.bus.Stats().PublishErrors > 0 })
	time.Sleep(settleIn)
	publishMany(t, wrong.bus, 1000)
	waitFor(t, "more failed attempts", func() bool { return wrong.bus.Stats().PublishErrors > 1 })
	if wrong.bus.Connected() {
		t.Fatal("connected with a wrong password")
	}
	warns := wrong.logs.FilterLevelExact(zapcore.WarnLevel).All()
	if len(warns) != 1 {
		t.Fatalf("%d warnings, want one for the outage: %v", len(warns), warns)
	}
	if e := fmt.Sprint(warns[0].ContextMap()["error"]); !strings.Contains(e, "WRONGPASS") && !strings.Contains(e, "NOAUTH") {
		t.Errorf("warning does not say why: %v", warns[0].ContextMap())
	}
	for _, e := range append(wrong.logs.All(), withURL.logs.All()...) {
		if line := fmt.Sprint(e.Message, e.ContextMap()); strings.Contains(line, "wr0ng-Pa55") || strings.Contains(line, "s3cret-pass") {
			t.Errorf("a log line holds a password: %s", line)
		}
	}
	if n := len(withOpt.rec.get()) + len(withURL.rec.get()); n == 0 {
		t.Fatal("lost the earlier messages")
	}
	for _, r := range []*replica{withURL, withOpt} {
		for _, tag := range r.rec.flat() {
			if strings.HasPrefix(tag, "u\x00user-") {
				t.Fatalf("a replica with the right password got the wrong one's tag %q", tag)
			}
		}
	}
}

func TestTLS(t *testing.T) {
	srv := startRedisTLS(t, "tls-pass", true)
	a := newReplica(t, Options{URL: "rediss://:tls-pass@" + srv.addr(), TLSInsecureSkipVerify: true})
	b := newReplica(t, Options{URL: "redis://" + srv.addr(), TLS: true, TLSInsecureSkipVerify: true, Password: "tls-pass"})
	waitConnected(t, a, b)
	publishUntil(t, a, "TLS replicas to share", b.rec.contains)

	// The self-signed certificate fails verification: reported, not blocking.
	v := newReplica(t, Options{URL: "rediss://:tls-pass@" + srv.addr()})
	publishMany(t, v.bus, 1000)
	waitFor(t, "the unverified certificate to fail", func() bool { return v.bus.Stats().PublishErrors > 0 })
	if v.bus.Connected() {
		t.Fatal("connected through an unverifiable certificate")
	}
	if e := fmt.Sprint(v.logs.FilterLevelExact(zapcore.WarnLevel).All()[0].ContextMap()["error"]); !strings.Contains(e, "certificate") {
		t.Errorf("warning does not name the certificate: %s", e)
	}
}

func TestNoRedisAtAll(t *testing.T) {
	port := freePort(t) // nothing listens there
	r := newReplica(t, Options{URL: fmt.Sprintf("redis://127.0.0.1:%d", port)})
	publishMany(t, r.bus, 1000)
	waitFor(t, "the failures to show", func() bool { return r.bus.Stats().PublishErrors > 0 })
	if r.bus.Connected() {
		t.Fatal("connected to nothing")
	}
	done := make(chan struct{})
	go func() { _ = r.bus.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(noBlock):
		t.Fatal("Close hangs while Redis is away")
	}
}

func TestBadOptions(t *testing.T) {
	apply := func([]string) {}
	for _, o := range []Options{
		{},
		{URL: "http://127.0.0.1:6379"},
		{URL: "redis://127.0.0.1:6379/not-a-db"},
		{URL: "redis://:hunter2-password@127.0.0.1:6379/%zz"},
		{URL: "redis://:hunter2-password@127.0.0.1:6379?no_such_option=1"},
		{URL: "redis://127.0.0.1:6379", TLSInsecureSkipVerify: true},
	} {
		b, err := New(o, nil, apply)
		if err == nil {
			_ = b.Close()
			t.Errorf("New(%+v) accepted", o)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error repeats the password: %v", err)
		}
	}
	if _, err := New(Options{URL: "redis://127.0.0.1:1"}, nil, nil); err == nil {
		t.Error("New accepted a nil apply")
	}
	var none *Bus // an unconfigured bus is a nil one
	none.Publish([]string{"u\x00x"})
	if none.Connected() || none.Stats() != (Stats{}) || none.Close() != nil || none.Destruct() != nil {
		t.Error("a nil *Bus is not inert")
	}
}

func TestCloseTwiceAndPublishAfterClose(t *testing.T) {
	srv := startRedis(t, "")
	a := newReplica(t, Options{URL: srv.url()})
	b := newReplica(t, Options{URL: srv.url()})
	waitConnected(t, a, b)

	// What is queued when Close is called still goes out.
	a.bus.Publish([]string{"u\x00last-words"})
	if err := a.bus.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.bus.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.bus.Destruct(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "B to get what A queued before closing", func() bool { return b.rec.contains("u\x00last-words") })
	a.bus.Publish([]string{"u\x00after-close"})
	if s := a.bus.Stats(); s.Connected || s.Dropped != 1 {
		t.Errorf("stats after close %+v", s)
	}
	time.Sleep(100 * time.Millisecond)
	if b.rec.contains("u\x00after-close") {
		t.Error("published after Close")
	}
}

// A replica that lost some of its own invalidations says so in its next
// message, and the others resync.
func TestGapMakesOthersResync(t *testing.T) {
	srv := startRedis(t, "")
	a := newReplica(t, Options{URL: srv.url()})
	b := newReplica(t, Options{URL: srv.url()})
	waitConnected(t, a, b)
	a.bus.Publish([]string{"u\x00no-gap"})
	waitFor(t, "the first message", func() bool { return b.rec.contains("u\x00no-gap") })
	if n := b.reconnects.Load(); n != 0 {
		t.Fatalf("OnReconnect ran %d times without a gap", n)
	}
	a.bus.lost.Store(true) // as after a full queue or a failed PUBLISH
	a.bus.Publish([]string{"u\x00after-gap"})
	waitFor(t, "the message after the gap", func() bool { return b.rec.contains("u\x00after-gap") })
	if n := b.reconnects.Load(); n != 1 {
		t.Fatalf("OnReconnect ran %d times after a gap, want 1", n)
	}
	a.bus.Publish([]string{"u\x00no-gap-again"})
	waitFor(t, "the next message", func() bool { return b.rec.contains("u\x00no-gap-again") })
	if n := b.reconnects.Load(); n != 1 {
		t.Fatalf("OnReconnect ran %d times, want still 1", n)
	}
}

func TestWireRoundTrip(t *testing.T) {
	id := strings.Repeat("0f", instanceIDBytes)
	tags := binaryTags()
	p, err := encode(id, tags, true)
	if err != nil {
		t.Fatal(err)
	}
	from, got, gap, err := decode(string(p))
	if err != nil || from != id || !gap || !reflect.DeepEqual(got, tags) {
		t.Fatalf("round trip: %q %q %v %v", from, got, gap, err)
	}
	// The sender's size estimate holds for the largest message it builds.
	big := make([]string, 0, maxTags)
	size := envelopeBytes
	for len(big) < maxTags {
		tag := strings.Repeat("\xff", maxTagBytes)
		if size+encodedTagBytes(tag) > maxMessageBytes {
			break
		}
		big = append(big, tag)
		size += encodedTagBytes(tag)
	}
	p, err = encode(id, big, true)
	if err != nil || len(p) > maxMessageBytes {
		t.Fatalf("a full message is %d bytes (limit %d), err %v", len(p), maxMessageBytes, err)
	}
	if _, _, _, err := decode(string(p)); err != nil {
		t.Fatalf("a full message does not decode: %v", err)
	}
}

func TestBackoff(t *testing.T) {
	for n := 1; n < 100; n++ {
		d := backoff(n)
		if d < minBackoff*8/10 || d > maxBackoff*12/10 {
			t.Fatalf("backoff(%d) = %v", n, d)
		}
	}
	if backoff(1) > minBackoff*12/10 || backoff(50) < maxBackoff*8/10 {
		t.Fatalf("backoff(1) = %v, backoff(50) = %v", backoff(1), backoff(50))
	}
}

// A connection that goes silent without closing (a vanished peer, a
// dropped NAT entry) is found by the ping health check and replaced.
func TestHalfOpenSubscriptionIsReplaced(t *testing.T) {
	old := healthInterval
	healthInterval = 200 * time.Millisecond // before any bus goroutine starts
	t.Cleanup(func() { healthInterval = old })

	srv := startRedis(t, "")
	px := startProxy(t, srv.addr())
	a := newReplica(t, Options{URL: srv.url()})
	b := newReplica(t, Options{URL: "redis://" + px.addr()})
	waitConnected(t, a, b)
	publishUntil(t, a, "B to hear A through the proxy", b.rec.contains)

	// Silence alone, answered by pongs, is no failure.
	time.Sleep(10 * healthInterval)
	for name, r := range map[string]*replica{"A": a, "B": b} {
		if s := r.bus.Stats(); s.Reconnects != 0 || !s.Connected || r.warns() != 0 {
			t.Fatalf("%s on an idle, healthy connection: %+v, %d warnings", name, s, r.warns())
		}
	}

	if n := px.freeze(); n == 0 {
		t.Fatal("B has no connection through the proxy")
	}
	waitFor(t, "B to give up on the silent connection", func() bool { return b.bus.Stats().Reconnects > 0 })
	publishUntil(t, a, "B to hear A on its new connection", b.rec.contains)
	if b.reconnects.Load() == 0 {
		t.Error("OnReconnect did not run after the silent connection was replaced")
	}
}

func TestFullQueueDropsOldest(t *testing.T) {
	b := &Bus{queue: make(chan []string, queueLen)} // no sender: the queue only fills
	for i := range queueLen + 10 {
		b.Publish([]string{fmt.Sprint("u\x00", i), ""})
	}
	if s := b.Stats(); s.Dropped != 10 {
		t.Fatalf("dropped %d tags, want the 10 oldest", s.Dropped)
	}
	if !b.lost.Load() {
		t.Fatal("a drop does not mark the next message as following a gap")
	}
	if first := <-b.queue; first[0] != "u\x0010" || len(first) != 1 {
		t.Fatalf("oldest kept is %q, want u\\x0010 (the empty tag ignored)", first)
	}
}
