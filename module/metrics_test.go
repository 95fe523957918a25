package module

import (
	"context"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMetrics(t *testing.T) {
	f := newFakeAuth(t)
	h := newHandler(t, f.URL, settingsPrefetch)
	reg := prometheus.NewRegistry()
	if err := registerMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if err := registerMetrics(reg); err != nil { // a reload into the same registry
		t.Fatalf("re-registering: %v", err)
	}
	// A real Provision registers into its context's registry too.
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	h2 := &Handler{Backend: f.URL}
	if err := h2.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	defer h2.Cleanup()

	hits := testutil.ToFloat64(metrics.cacheLookups.WithLabelValues("session", "hit"))
	redirects := testutil.ToFloat64(metrics.guard.WithLabelValues("redirected"))
	injections := testutil.ToFloat64(metrics.injections)
	refused := testutil.ToFloat64(metrics.backendCalls.WithLabelValues("list_user_invitations", "refused"))
	serve(h, pageReq("/settings/orgs/a", "tok1"))
	serve(h, pageReq("/settings/orgs/a", "tok1"))
	serve(h, pageReq("/settings/x", ""))
	if d := testutil.ToFloat64(metrics.cacheLookups.WithLabelValues("session", "hit")) - hits; d != 1 {
		t.Fatalf("session hits +%v, want +1", d)
	}
	if d := testutil.ToFloat64(metrics.guard.WithLabelValues("redirected")) - redirects; d != 1 {
		t.Fatalf("redirects +%v", d)
	}
	if d := testutil.ToFloat64(metrics.injections) - injections; d != 2 {
		t.Fatalf("injections +%v", d)
	}
	if d := testutil.ToFloat64(metrics.backendCalls.WithLabelValues("list_user_invitations", "refused")) - refused; d != 2 {
		t.Fatalf("refused calls +%v, want +2 (a refusal is not cached)", d)
	}
	n, err := testutil.GatherAndCount(reg)
	if err != nil || n == 0 {
		t.Fatalf("gather: %d %v", n, err)
	}
	out, _ := reg.Gather()
	for _, mf := range out {
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				if strings.Contains(l.GetValue(), "u1") || strings.Contains(l.GetValue(), "tok") {
					t.Fatalf("a label holds user data: %s=%s", l.GetName(), l.GetValue())
				}
			}
		}
	}
}

func TestDebugHeader(t *testing.T) {
	f := newFakeAuth(t)
	h := newHandler(t, f.URL, func(h *Handler) { settingsPrefetch(h); h.DebugHeader = "Better-Auth-Status" })
	rec := serve(h, pageReq("/settings/orgs/a", "tok1"))
	got := rec.Header().Get("Better-Auth-Status")
	for _, want := range []string{"better-auth; guard=allowed", "session; fwd=miss; stored", "list_sessions; fwd=miss; stored", "list_user_invitations; fwd=miss; detail=refused"} {
		if !strings.Contains(got, want) {
			t.Fatalf("debug header %q lacks %q", got, want)
		}
	}
	rec = serve(h, pageReq("/settings/orgs/a", "tok1"))
	if got := rec.Header().Get("Better-Auth-Status"); !strings.Contains(got, "session; hit; age=0") || !strings.Contains(got, "list_sessions; hit") {
		t.Fatalf("second request: %q", got)
	}
	if strings.Contains(got, "u1") || strings.Contains(got, "tok1") {
		t.Fatal("debug header holds user data")
	}
	rec = serve(h, pageReq("/settings/x", ""))
	if got := rec.Header().Get("Better-Auth-Status"); got != "better-auth; guard=redirected, session; detail=no-credential" {
		t.Fatalf("redirect: %q", got)
	}
	h2 := newHandler(t, f.URL, nil)
	if rec := serve(h2, pageReq("/settings/x", "tok1")); rec.Header().Get("Better-Auth-Status") != "" {
		t.Fatal("debug header without debug_header")
	}
}
