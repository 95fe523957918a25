package module

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/seed5911dcdf/caddy-better-auth/betterauth"
)

// debugInfo is what the opt-in debug header tells about one request, in
// the style of RFC 9211 Cache-Status: one member per query, the session
// first, e.g.
//
//	Better-Auth-Status: better-auth; guard=allowed, session; hit; age=2,
//	    list_sessions; fwd=miss; stored, has_permission; fwd=miss; detail=refused
//
// It names families and cache outcomes only: no id, token or user data.
type debugInfo struct {
	header  string
	guard   string
	session string
}

func (h *Handler) newDebug(res sessionResult, cred betterauth.Credential) *debugInfo {
	if h.DebugHeader == "" {
		return nil
	}
	d := &debugInfo{header: h.DebugHeader}
	switch {
	case cred.Empty():
		d.session = "detail=no-credential"
	case res.stale:
		d.session = fmt.Sprintf("hit; detail=stale-if-error; age=%d", int(res.entry.Age(time.Now()).Seconds()))
	case res.hit:
		d.session = fmt.Sprintf("hit; age=%d", int(res.entry.Age(time.Now()).Seconds()))
	case res.entry != nil:
		d.session = "fwd=miss; stored"
	}
	return d
}

func (d *debugInfo) value(p *pending) string {
	members := []string{"better-auth; guard=" + d.guard}
	if d.session != "" {
		members = append(members, "session; "+d.session)
	}
	if p != nil {
		p.mu.Lock()
		for i := range p.items {
			st := p.items[i].status
			if st == "" {
				st = "fwd=miss; detail=timeout"
			}
			members = append(members, p.items[i].family.Name+"; "+st)
		}
		p.mu.Unlock()
	}
	return strings.Join(members, ", ")
}

// writer sets the header when the upstream's headers go out, after the
// queries resolved (or the deadline passed), so it says what the page got.
func (d *debugInfo) writer(w http.ResponseWriter, p *pending, deadline time.Time) http.ResponseWriter {
	return &debugWriter{ResponseWriter: w, set: func() {
		if p != nil {
			p.wait(deadline)
		}
		w.Header().Set(d.header, d.value(p))
	}}
}

type debugWriter struct {
	http.ResponseWriter
	once sync.Once
	set  func()
}

func (d *debugWriter) WriteHeader(code int) {
	if code >= 200 {
		d.once.Do(d.set)
	}
	d.ResponseWriter.WriteHeader(code)
}

func (d *debugWriter) Write(b []byte) (int, error) {
	d.once.Do(d.set)
	return d.ResponseWriter.Write(b)
}

func (d *debugWriter) Flush() { http.NewResponseController(d.ResponseWriter).Flush() }

func (d *debugWriter) Unwrap() http.ResponseWriter { return d.ResponseWriter }
