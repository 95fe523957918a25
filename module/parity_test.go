package module

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/seed5911dcdf/caddy-better-auth/betterauth"
)

// golden is testdata/parity/golden.json: dehydrate() of the real server
// helpers of @better-auth-ui/core, run by testdata/parity/generate.mjs.
type golden struct {
	UserID string       `json:"userId"`
	Cases  []goldenCase `json:"cases"`
}

type goldenCase struct {
	Name            string          `json:"name"`
	Family          string          `json:"family"`
	Params          json.RawMessage `json:"params"`
	Slug            json.RawMessage `json:"slug"` // present: the client's slug setting applies
	QueryKey        json.RawMessage `json:"queryKey"`
	QueryHash       string          `json:"queryHash"`
	ClientQueryHash string          `json:"clientQueryHash"`
	Data            json.RawMessage `json:"data"`
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (regenerate with: cd testdata/parity && npm ci && npm run generate)", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func jsonValue(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return v
}

// TestParityWithBetterAuthUI builds, through the handler, the state for
// every golden case and compares queryKey, queryHash and data with what the
// real @better-auth-ui code computes on the client.
func TestParityWithBetterAuthUI(t *testing.T) {
	var g golden
	readJSON(t, "../testdata/parity/golden.json", &g)
	var fixtures struct {
		Session json.RawMessage `json:"session"`
	}
	readJSON(t, "../testdata/parity/fixtures.json", &fixtures)
	if len(g.Cases) < 40 {
		t.Fatalf("only %d golden cases", len(g.Cases))
	}
	seen := map[string]bool{}
	for _, c := range g.Cases {
		t.Run(c.Name, func(t *testing.T) {
			seen[c.Family] = true
			f := betterauth.Families[c.Family]
			if f == nil {
				t.Fatalf("family %q not in the registry", c.Family)
			}
			session := fixtures.Session
			if f == betterauth.SessionFamily {
				session = c.Data
			}
			backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/api/auth"+betterauth.SessionFamily.Endpoint {
					w.Write(session)
					return
				}
				if r.URL.Path != "/api/auth"+f.Endpoint {
					http.NotFound(w, r)
					return
				}
				w.Write(c.Data)
			}))
			defer backend.Close()

			// The params the hook ends up with: for a slug setting, the
			// resolved query (the key's last element) is what a user
			// configures; a "placeholder" case takes it from the path.
			params := c.Params
			if len(c.Slug) > 0 {
				var key []json.RawMessage
				json.Unmarshal(c.QueryKey, &key)
				params = key[len(key)-1]
			}
			path := "/page"
			if strings.Contains(c.Name, "placeholder") {
				var p map[string]string
				json.Unmarshal(params, &p)
				path = "/orgs/" + p["organizationSlug"]
				params = json.RawMessage(`{"organizationSlug":"{http.request.uri.path.1}"}`)
			}
			h := newHandler(t, backend.URL, func(h *Handler) {
				h.Prefetch = []Prefetch{{Paths: []string{"*"}, Queries: []QuerySpec{{Family: c.Family, Params: params}}}}
			})
			rec := serve(h, pageReq(path, "tok"))
			state := injected(t, rec.Body.String())
			wantHash := c.ClientQueryHash
			if wantHash == "" {
				wantHash = c.QueryHash
			}
			var found map[string]any
			for _, q := range state["queries"].([]any) {
				q := q.(map[string]any)
				if q["queryHash"] == wantHash {
					found = q
				}
			}
			if found == nil {
				var hashes []string
				for _, q := range state["queries"].([]any) {
					hashes = append(hashes, q.(map[string]any)["queryHash"].(string))
				}
				t.Fatalf("no query with hash %s; injected %q", wantHash, hashes)
			}
			if !reflect.DeepEqual(found["queryKey"], jsonValue(t, []byte(wantHash))) {
				t.Fatalf("queryKey %v, want %s", found["queryKey"], wantHash)
			}
			if got := found["state"].(map[string]any)["data"]; !reflect.DeepEqual(got, jsonValue(t, c.Data)) {
				t.Fatalf("data %v, want %s", got, c.Data)
			}
			st := found["state"].(map[string]any)
			if st["status"] != "success" || st["fetchStatus"] != "idle" || st["dataUpdatedAt"].(float64) > float64(time.Now().UnixMilli()) {
				t.Fatalf("state %v", st)
			}
		})
	}
	if len(seen) != len(betterauth.Families) {
		t.Fatalf("golden covers %d families, the registry has %d", len(seen), len(betterauth.Families))
	}
}
