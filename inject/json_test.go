package inject

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// hashVector is one entry of testdata/hashkey/vectors.json, written by
// testdata/hashkey/generate.mjs with the real hashKey of @tanstack/query-core.
type hashVector struct {
	Key       string `json:"key"`
	KeyBase64 string `json:"keyBase64"`
	Hash      string `json:"hash"`
	Error     string `json:"error"`
}

func TestHashKeyVectors(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "hashkey", "vectors.json"))
	if err != nil {
		t.Fatalf("reading the vectors (regenerate with `npm ci && node generate.mjs` in testdata/hashkey): %v", err)
	}
	var vectors []hashVector
	if err := json.Unmarshal(raw, &vectors); err != nil {
		t.Fatal(err)
	}
	if len(vectors) < 1000 {
		t.Fatalf("only %d vectors", len(vectors))
	}
	var hashes, errs, rawBytes int
	for i, v := range vectors {
		key := []byte(v.Key)
		if v.KeyBase64 != "" {
			if key, err = base64.StdEncoding.DecodeString(v.KeyBase64); err != nil {
				t.Fatal(err)
			}
			rawBytes++
		}
		got, err := HashKey(key)
		switch {
		case v.Error != "":
			errs++
			if err == nil {
				t.Errorf("vector %d: HashKey(%q) = %q, want an error (JSON.parse: %s)", i, key, got, v.Error)
			}
		case err != nil:
			t.Errorf("vector %d: HashKey(%q): %v, want %q", i, key, err, v.Hash)
		case got != v.Hash:
			hashes++
			t.Errorf("vector %d: HashKey(%q)\n got %q\nwant %q", i, key, got, v.Hash)
		default:
			hashes++
		}
	}
	t.Logf("%d hashes, %d rejected texts, %d keys given as bytes", hashes, errs, rawBytes)
	if errs == 0 || rawBytes == 0 {
		t.Error("the vectors lack rejected texts or byte keys")
	}
}

func TestHashKey(t *testing.T) {
	for _, tc := range []struct{ key, want string }{
		{`["auth","getSession"]`, `["auth","getSession"]`},
		{`[{"b":1,"a":2,"10":3,"9":4}]`, `[{"9":4,"10":3,"a":2,"b":1}]`},
		{`[1.0, 1e21, 1e-7, -0, 0.1, 123456789012345678901234567890, 1e400]`, `[1,1e+21,1e-7,0,0.1,1.2345678901234568e+29,null]`},
		{`["<>&\u2028\u2029é😀", "\ud800", "\u0001\u001f\b\f\n\r\t"]`, "[\"<>&\u2028\u2029é😀\",\"\\ud800\",\"\\u0001\\u001f\\b\\f\\n\\r\\t\"]"},
		{`[{"a":1,"a":2,"__proto__":{"x":1}}]`, `[{"a":2}]`},
		{`[{"\ue000":1,"😀":2}]`, "[{\"😀\":2,\"\ue000\":1}]"}, // UTF-16: D83D < E000
	} {
		got, err := HashKey([]byte(tc.key))
		if err != nil || got != tc.want {
			t.Errorf("HashKey(%s) = %q, %v; want %q", tc.key, got, err, tc.want)
		}
	}
	for _, bad := range []string{`{"a":1}`, `"a"`, `1`, ``, `[1]x`, `[1,]`} {
		if got, err := HashKey([]byte(bad)); err == nil {
			t.Errorf("HashKey(%q) = %q, want an error", bad, got)
		}
	}
}

func TestNumberToString(t *testing.T) {
	for _, tc := range []struct {
		f    float64
		want string
	}{
		{0, "0"}, {math.Copysign(0, -1), "0"}, {1, "1"}, {-1, "-1"}, {0.1, "0.1"}, {1e21, "1e+21"}, {1e20, "100000000000000000000"},
		{123e18, "123000000000000000000"}, {1.5e21, "1.5e+21"}, {1e-6, "0.000001"}, {1e-7, "1e-7"}, {1.23e-7, "1.23e-7"},
		{5e-324, "5e-324"}, {math.MaxFloat64, "1.7976931348623157e+308"}, {math.Inf(1), "null"}, {123.456, "123.456"},
		{9007199254740993, "9007199254740992"},
	} {
		if got := string(appendNumberToString(nil, tc.f)); got != tc.want {
			t.Errorf("toString(%v) = %s, want %s", tc.f, got, tc.want)
		}
	}
}

func TestEncodeJSON(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"b":1.0,"a":2,"b":1e21}`, `{"b":1.0,"a":2,"b":1e21}`}, // order, duplicates, number text
		{" \t\n\r[ 1 , -0.0E+5 , 123456789012345678901234567890 ]\n", `[1,-0.0E+5,123456789012345678901234567890]`},
		{`"</script><script>alert(1)</script>"`, `"\u003c/script\u003e\u003cscript\u003ealert(1)\u003c/script\u003e"`},
		{`"<!--<script>&amp;"`, `"\u003c!--\u003cscript\u003e\u0026amp;"`},
		{"\"a\u2028b\u2029c\"", `"a\u2028b\u2029c"`},
		{`"\u2028\u003c\/"`, `"\u2028\u003c/"`},
		{`"\ud83d\ude00 \ud800 \udc00\ud800"`, `"😀 \ud800 \udc00\ud800"`},
		{`"\u0000\u001f\b\f\n\r\t\"\\"`, `"\u0000\u001f\b\f\n\r\t\"\\"`},
		{"\"\xff\xe2\x82\xed\xa0\x80é\"", "\"\ufffd\ufffd\ufffd\ufffd\ufffdé\""},
		{`{"<key>":{"&":[]}}`, `{"\u003ckey\u003e":{"\u0026":[]}}`},
		{`[true,false,null,{},[]]`, `[true,false,null,{},[]]`},
	} {
		got, err := EncodeJSON([]byte(tc.in))
		if err != nil || string(got) != tc.want {
			t.Errorf("EncodeJSON(%q) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

func TestEncodeJSONRejects(t *testing.T) {
	for _, bad := range []string{
		``, ` `, `[`, `{`, `[1,]`, `{"a":1,}`, `{"a" 1}`, `{a:1}`, `[01]`, `[1.]`, `[.5]`, `[1e]`, `[-]`, `[+1]`, `[NaN]`,
		`["a]`, `["\x"]`, `["\u12"]`, "[\"\t\"]", "[\"\x00\"]", `[1] [2]`, `[1]x`, "\ufeff[1]", `tru`, `nul`, `[True]`,
		`"\`, `"\u`, `{"a":1 "b":2}`, `[1 2]`, "[1,\v2]", strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1),
	} {
		if got, err := EncodeJSON([]byte(bad)); err == nil {
			t.Errorf("EncodeJSON(%q) = %s, want an error", bad, got)
		}
		// encoding/json agrees that these are invalid.
		if json.Valid([]byte(bad)) {
			t.Errorf("encoding/json takes %q as valid", bad)
		}
	}
	deep := strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth)
	if _, err := EncodeJSON([]byte(deep)); err != nil {
		t.Errorf("depth %d: %v", maxDepth, err)
	}
}

// TestEncodeJSONHostile checks, for strings meant to break out of a script
// element, that the output is HTML-safe and decodes back to the same value.
func TestEncodeJSONHostile(t *testing.T) {
	for _, s := range []string{
		"</script><script>alert(1)</script>", "<!--<script>", "-->", "</SCRIPT", "<\u2028\u2029>", "&lt;",
		"\x00\x01\x7f", "\"\\", "]]>", "<![CDATA[", "😀\ufeff", "\xff\xfe", "a\xc0\x80b",
	} {
		raw, _ := json.Marshal(map[string]any{"user": map[string]any{"name": s, s: []any{s, 1.5}}})
		got, err := EncodeJSON(raw)
		if err != nil {
			t.Fatalf("EncodeJSON(%s): %v", raw, err)
		}
		assertHTMLSafe(t, got)
		var a, b any
		if err := json.Unmarshal(raw, &a); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(got, &b); err != nil {
			t.Fatalf("output %s: %v", got, err)
		}
		if !jsonEqual(a, b) {
			t.Errorf("%q: decoded %v, want %v", s, b, a)
		}
	}
}

func assertHTMLSafe(t *testing.T, b []byte) {
	t.Helper()
	if i := bytes.IndexAny(b, "<>&\u2028\u2029"); i >= 0 {
		t.Errorf("not HTML-safe at %d: %q", i, b)
	}
	if !utf8.Valid(b) {
		t.Errorf("not valid UTF-8: %q", b)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// TestEncodeJSONMatchesEncodingJSON compares, on valid input, the decoded
// value with what encoding/json makes of the input itself.
func TestEncodeJSONMatchesEncodingJSON(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "hashkey", "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vectors []hashVector
	if err := json.Unmarshal(raw, &vectors); err != nil {
		t.Fatal(err)
	}
	for _, v := range vectors {
		if v.Error != "" || v.KeyBase64 != "" {
			continue
		}
		got, err := EncodeJSON([]byte(v.Key))
		if err != nil {
			t.Errorf("EncodeJSON(%q): %v", v.Key, err)
			continue
		}
		assertHTMLSafe(t, got)
		// Numbers as text, so that big and precise ones compare exactly.
		var a, b any
		da := json.NewDecoder(strings.NewReader(v.Key))
		da.UseNumber()
		db := json.NewDecoder(bytes.NewReader(got))
		db.UseNumber()
		if err := da.Decode(&a); err != nil {
			t.Fatal(err)
		}
		if err := db.Decode(&b); err != nil {
			t.Fatalf("output %s: %v", got, err)
		}
		if !jsonEqual(a, b) {
			t.Errorf("EncodeJSON(%q) = %s: a different value", v.Key, got)
		}
	}
}
