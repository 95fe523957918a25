package inject

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// dehydratedState is the documented shape, field for field.
type dehydratedState struct {
	Mutations []any `json:"mutations"`
	Queries   []struct {
		QueryKey     json.RawMessage `json:"queryKey"`
		QueryHash    string          `json:"queryHash"`
		DehydratedAt int64           `json:"dehydratedAt"`
		State        struct {
			Data               json.RawMessage `json:"data"`
			DataUpdateCount    int             `json:"dataUpdateCount"`
			DataUpdatedAt      int64           `json:"dataUpdatedAt"`
			Error              any             `json:"error"`
			ErrorUpdateCount   int             `json:"errorUpdateCount"`
			ErrorUpdatedAt     int64           `json:"errorUpdatedAt"`
			FetchFailureCount  int             `json:"fetchFailureCount"`
			FetchFailureReason any             `json:"fetchFailureReason"`
			FetchMeta          any             `json:"fetchMeta"`
			IsInvalidated      bool            `json:"isInvalidated"`
			Status             string          `json:"status"`
			FetchStatus        string          `json:"fetchStatus"`
		} `json:"state"`
	} `json:"queries"`
}

func mustHash(t testing.TB, key string) string {
	h, err := HashKey([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func mustEncode(t testing.TB, raw string) []byte {
	b, err := EncodeJSON([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const hostileUser = `{"session":{"id":"s1","expiresAt":"2026-01-01T00:00:00.000Z"},"user":{"id":"u1","name":"</script><script>alert(1)</script>","bio":"<!--<script>","email":"a&b@example.com","note":"\u2028\u2029 </SCRIPT > <!-- --> ]]>"}}`

func TestAppendState(t *testing.T) {
	qs := []Query{
		{Hash: mustHash(t, `["auth","getSession"]`), Data: mustEncode(t, hostileUser), UpdatedAt: 1764797583865},
		{Hash: mustHash(t, `["auth","user","</script>","listAccounts",{"b":1,"a":"<!--"}]`), Data: mustEncode(t, `[{"providerId":"credential"}]`), UpdatedAt: 1764797583000},
		{Hash: mustHash(t, `["auth","nothing"]`), UpdatedAt: 5},
	}
	out := AppendState([]byte("prefix:"), qs, 1764797583999)
	if !bytes.HasPrefix(out, []byte("prefix:")) {
		t.Fatal("dst not appended to")
	}
	out = out[len("prefix:"):]
	assertHTMLSafe(t, out)
	var st dehydratedState
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	if st.Mutations == nil || len(st.Mutations) != 0 || len(st.Queries) != len(qs) {
		t.Fatalf("mutations %v, %d queries", st.Mutations, len(st.Queries))
	}
	for i, q := range st.Queries {
		var key, hashAsKey any
		json.Unmarshal(q.QueryKey, &key)
		json.Unmarshal([]byte(qs[i].Hash), &hashAsKey)
		if !reflect.DeepEqual(key, hashAsKey) || q.QueryHash != qs[i].Hash {
			t.Errorf("query %d: key %s, hash %q; want %s", i, q.QueryKey, q.QueryHash, qs[i].Hash)
		}
		if q.DehydratedAt != 1764797583999 || q.State.DataUpdatedAt != qs[i].UpdatedAt {
			t.Errorf("query %d: times %d %d", i, q.DehydratedAt, q.State.DataUpdatedAt)
		}
		s := q.State
		if s.DataUpdateCount != 1 || s.Error != nil || s.ErrorUpdateCount != 0 || s.ErrorUpdatedAt != 0 ||
			s.FetchFailureCount != 0 || s.FetchFailureReason != nil || s.FetchMeta != nil || s.IsInvalidated ||
			s.Status != "success" || s.FetchStatus != "idle" {
			t.Errorf("query %d: state %+v", i, s)
		}
	}
	var data, orig any
	json.Unmarshal(st.Queries[0].State.Data, &data)
	json.Unmarshal([]byte(hostileUser), &orig)
	if !reflect.DeepEqual(data, orig) {
		t.Errorf("data %v, want %v", data, orig)
	}
	if string(st.Queries[2].State.Data) != "null" {
		t.Errorf("empty Data: %s", st.Queries[2].State.Data)
	}
	if got := string(AppendState(nil, nil, 1)); got != `{"mutations":[],"queries":[]}` {
		t.Errorf("no queries: %s", got)
	}
}

// TestAppendStateCallerMistakes: data and hashes that did not come from
// EncodeJSON and HashKey still cannot break out of the element.
func TestAppendStateCallerMistakes(t *testing.T) {
	qs := []Query{{Hash: `["</script>","\u2028"]`, Data: []byte(`{"x":"</script><script>alert(1)</script>","y":"` + "\u2028" + `"}`)}}
	assertHTMLSafe(t, AppendState(nil, qs, 0))
	const badID = `"><script>alert(1)</script>`
	doc, err := html.Parse(bytes.NewReader(AppendScript(nil, badID, qs, 0)))
	if err != nil {
		t.Fatal(err)
	}
	if n := countScripts(doc); n != 1 {
		t.Fatalf("%d scripts", n)
	}
	for n := range doc.Descendants() {
		if n.DataAtom == atom.Script && attr(n, "id") != badID {
			t.Errorf("id %q", attr(n, "id"))
		}
	}
}

func TestValidID(t *testing.T) {
	for id, want := range map[string]bool{
		"__BETTER_AUTH_STATE__": true, "a": true, "_": true, "a-b.c:d_1": true, "A9": true,
		strings.Repeat("a", 128): true, strings.Repeat("a", 129): false,
		"": false, "1a": false, "-a": false, "a b": false, `a"b`: false, "a<b": false, "a>": false, "a&b": false,
		"é": false, "a/b": false, "a\x00": false, ":a": false, ".a": false,
	} {
		if ValidID(id) != want {
			t.Errorf("ValidID(%q) = %v", id, !want)
		}
	}
}

// TestHostileDataInPage injects a state holding hostile strings into pages
// and parses each result as a browser would: exactly one element with the
// id, a script, whose text decodes back to the original data.
func TestHostileDataInPage(t *testing.T) {
	const id = "__BETTER_AUTH_STATE__"
	qs := []Query{{Hash: mustHash(t, `["auth","getSession"]`), Data: mustEncode(t, hostileUser), UpdatedAt: 1}}
	block := AppendScript(nil, id, qs, 2)
	if !bytes.HasPrefix(block, []byte(`<script type="application/json" id="`+id+`">`)) || !bytes.HasSuffix(block, []byte("</script>")) {
		t.Fatalf("block %s", block)
	}
	var want any
	json.Unmarshal([]byte(hostileUser), &want)
	pages := 0
	for _, tc := range fixtures(t) {
		if bytes.Equal(tc.src, tc.want) {
			continue // no insertion point
		}
		pages++
		var out bytes.Buffer
		in := NewInjector(&out, func() []byte { return block })
		in.Write(tc.src)
		in.Close()
		if !in.Injected() {
			t.Fatalf("%s: not injected", tc.name)
		}
		doc, err := html.Parse(bytes.NewReader(out.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		before, _ := html.Parse(bytes.NewReader(tc.src))
		var found []*html.Node
		for n := range doc.Descendants() {
			if n.Type == html.ElementNode && attr(n, "id") == id {
				found = append(found, n)
			}
		}
		if len(found) != 1 || found[0].DataAtom != atom.Script || attr(found[0], "type") != "application/json" {
			t.Errorf("%s: %d elements with the id", tc.name, len(found))
			continue
		}
		if got, was := countScripts(doc), countScripts(before); got != was+1 {
			t.Errorf("%s: %d script elements, %d before", tc.name, got, was)
		}
		text := found[0].FirstChild
		if text == nil || text.NextSibling != nil || text.Type != html.TextNode {
			t.Errorf("%s: the script's content is not one text node", tc.name)
			continue
		}
		var st dehydratedState
		if err := json.Unmarshal([]byte(text.Data), &st); err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		var data any
		json.Unmarshal(st.Queries[0].State.Data, &data)
		if !reflect.DeepEqual(data, want) {
			t.Errorf("%s: data %v", tc.name, data)
		}
	}
	if pages < 20 {
		t.Errorf("only %d pages", pages)
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func countScripts(doc *html.Node) int {
	n := 0
	for d := range doc.Descendants() {
		if d.Type == html.ElementNode && d.DataAtom == atom.Script {
			n++
		}
	}
	return n
}

// A Head from QueryHead and a Safe flag from HTMLSafe give what AppendState
// computes itself; HTMLSafe says no where escaping is needed.
func TestQueryHeadAndHTMLSafe(t *testing.T) {
	qs := []Query{
		{Hash: mustHash(t, `["auth","getSession"]`), Data: mustEncode(t, hostileUser), UpdatedAt: 1764797583865},
		{Hash: mustHash(t, `["auth","user","</script>","listAccounts",{"b":1,"a":"<!--"}]`), Data: mustEncode(t, `[{"providerId":"credential"}]`), UpdatedAt: 1764797583000},
		{Hash: `["\"quoted\"","</x>","` + "\u2028" + `"]`, Data: []byte(`{"a":"</b>"}`), UpdatedAt: 3},
		{Hash: mustHash(t, `["auth","nothing"]`), UpdatedAt: 5},
	}
	prepared := make([]Query, len(qs))
	for i, q := range qs {
		q.Head, q.Safe = QueryHead(q.Hash), HTMLSafe(q.Data)
		prepared[i] = q
	}
	if a, b := AppendState(nil, qs, 7), AppendState(nil, prepared, 7); !bytes.Equal(a, b) {
		t.Fatalf("prepared differs:\n%s\n%s", a, b)
	}
	if prepared[2].Safe {
		t.Error(`HTMLSafe({"a":"</b>"}) = true`)
	}
	for _, tc := range []struct {
		in   string
		safe bool
	}{
		{`{"a":1}`, true}, {`"é€"`, true}, {"\"\u2027\u202a\"", true}, {`"<"`, false}, {`">"`, false},
		{`"&"`, false}, {"\"\u2028\"", false}, {"\"\u2029\"", false}, {"\xe2\x80", true}, {"", true},
	} {
		if got := HTMLSafe([]byte(tc.in)); got != tc.safe {
			t.Errorf("HTMLSafe(%q) = %v", tc.in, got)
		}
	}
}
