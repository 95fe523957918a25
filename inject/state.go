package inject

import (
	"bytes"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// Query is one query of the dehydrated state.
type Query struct {
	Hash      string // HashKey output; it is also valid JSON for the queryKey itself
	Data      []byte // EncodeJSON output (or `null`); empty means null
	UpdatedAt int64  // ms since epoch: when the data was fetched from Better Auth

	// Optional, for answers written many times: Head is QueryHead(Hash), and
	// Safe says HTMLSafe(Data) held (Data must not change since).
	Head []byte
	Safe bool
}

// QueryHead is the part of a query's dehydrated form that depends on its
// hash alone, up to "dehydratedAt":, as AppendState writes it.
func QueryHead(hash string) []byte {
	return appendQueryHead(make([]byte, 0, 2*len(hash)+48), hash)
}

func appendQueryHead(dst []byte, hash string) []byte {
	dst = append(dst, `{"queryKey":`...)
	dst = appendHTMLSafe(dst, hash)
	dst = append(dst, `,"queryHash":`...)
	dst = appendHashString(dst, hash)
	return append(dst, `,"dehydratedAt":`...)
}

// HTMLSafe reports whether JSON text needs no escaping inside a <script>
// element: no <, >, & and no U+2028 or U+2029 (EncodeJSON output never has
// them).
func HTMLSafe(json []byte) bool {
	if bytes.IndexByte(json, '<') >= 0 || bytes.IndexByte(json, '>') >= 0 || bytes.IndexByte(json, '&') >= 0 {
		return false
	}
	for i := 0; ; {
		j := bytes.IndexByte(json[i:], 0xE2)
		if j < 0 {
			return true
		}
		i += j
		if i+2 < len(json) && json[i+1] == 0x80 && (json[i+2] == 0xA8 || json[i+2] == 0xA9) {
			return false
		}
		i++
	}
}

// AppendState appends the TanStack Query dehydrated state holding qs, as
// hydrate() reads it, HTML-safe as a whole: the Hash and Data are escaped once
// more (a no-op for HashKey and EncodeJSON output), so a caller's mistake can
// make the JSON wrong but can never end the <script> element. A Head or a
// Safe flag, computed once by QueryHead and HTMLSafe, stands for that work.
func AppendState(dst []byte, qs []Query, dehydratedAt int64) []byte {
	dst = append(dst, `{"mutations":[],"queries":[`...)
	for i, q := range qs {
		if i > 0 {
			dst = append(dst, ',')
		}
		if q.Head != nil {
			dst = append(dst, q.Head...)
		} else {
			dst = appendQueryHead(dst, q.Hash)
		}
		dst = strconv.AppendInt(dst, dehydratedAt, 10)
		dst = append(dst, `,"state":{"data":`...)
		switch {
		case len(q.Data) == 0:
			dst = append(dst, "null"...)
		case q.Safe:
			dst = append(dst, q.Data...)
		default:
			dst = appendHTMLSafeBytes(dst, q.Data)
		}
		dst = append(dst, `,"dataUpdateCount":1,"dataUpdatedAt":`...)
		dst = strconv.AppendInt(dst, q.UpdatedAt, 10)
		dst = append(dst, `,"error":null,"errorUpdateCount":0,"errorUpdatedAt":0,"fetchFailureCount":0,"fetchFailureReason":null,"fetchMeta":null,"isInvalidated":false,"status":"success","fetchStatus":"idle"}}`...)
	}
	return append(dst, "]}"...)
}

// AppendScript appends <script type="application/json" id="ID">STATE</script>.
// The id should pass ValidID (check it once, when the configuration is
// loaded); any other id is still written HTML-escaped, never raw.
func AppendScript(dst []byte, id string, qs []Query, dehydratedAt int64) []byte {
	dst = append(dst, `<script type="application/json" id="`...)
	if ValidID(id) {
		dst = append(dst, id...)
	} else {
		dst = appendAttrEscaped(dst, id)
	}
	dst = append(dst, `">`...)
	dst = AppendState(dst, qs, dehydratedAt)
	return append(dst, "</script>"...)
}

// ValidID reports whether id is usable as the element id as it is:
// [A-Za-z_][A-Za-z0-9_:.-]{0,127}.
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', c == '_':
		case i > 0 && ('0' <= c && c <= '9' || c == ':' || c == '.' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// appendHTMLSafeBytes is appendHTMLSafe for data, which is usually safe
// already (EncodeJSON output): four vectorized scans find nothing to
// escape and the data is copied in one piece.
func appendHTMLSafeBytes(dst, json []byte) []byte {
	if HTMLSafe(json) {
		return append(dst, json...)
	}
	return appendHTMLSafe(dst, json)
}

// appendHTMLSafe appends JSON text with <, >, &, U+2028 and U+2029 escaped,
// copying the runs between them whole (the text is usually safe already).
func appendHTMLSafe[T string | []byte](dst []byte, json T) []byte {
	start := 0
	for i := 0; i < len(json); i++ {
		c := json[i]
		if c != '<' && c != '>' && c != '&' && c != 0xE2 {
			continue
		}
		if c == 0xE2 && !(i+2 < len(json) && json[i+1] == 0x80 && (json[i+2] == 0xA8 || json[i+2] == 0xA9)) {
			continue
		}
		dst = append(dst, json[start:i]...)
		if c == 0xE2 {
			dst = appendUnitEscape(dst, 0x2028+uint16(json[i+2]-0xA8))
			i += 2
		} else {
			dst = appendUnitEscape(dst, uint16(c))
		}
		start = i + 1
	}
	return append(dst, json[start:]...)
}

// appendHashString appends the hash as an HTML-safe JSON string: printable
// ASCII without quotes, backslashes or <>& (the usual hash) is copied in
// one piece, anything else goes through the full encoder.
func appendHashString(dst []byte, hash string) []byte {
	for i := 0; i < len(hash); i++ {
		if c := hash[i]; c < 0x20 || c >= 0x7f || c == '\\' || c == '<' || c == '>' || c == '&' {
			return appendString(dst, stringUnits(hash), true)
		}
	}
	// Only '"' needs escaping now.
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(hash); i++ {
		if hash[i] == '"' {
			dst = append(dst, hash[start:i]...)
			dst = append(dst, '\\', '"')
			start = i + 1
		}
	}
	dst = append(dst, hash[start:]...)
	return append(dst, '"')
}

// StateSize estimates the bytes AppendScript writes for qs, to size its
// buffer once.
func StateSize(qs []Query) int {
	n := 128
	for _, q := range qs {
		n += len(q.Data) + 2*len(q.Hash) + 320
	}
	return n
}

// stringUnits converts s to UTF-16, invalid UTF-8 becoming U+FFFD.
func stringUnits(s string) []uint16 {
	u := make([]uint16, 0, len(s))
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			u = append(u, uint16(s[i]))
			i++
			continue
		}
		r, size := decodeRune([]byte(s[i:min(len(s), i+utf8.UTFMax)]))
		u = utf16.AppendRune(u, r)
		i += size
	}
	return u
}

// appendAttrEscaped escapes s for a double-quoted attribute value.
func appendAttrEscaped(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '&':
			dst = append(dst, "&amp;"...)
		case '"':
			dst = append(dst, "&quot;"...)
		case '<':
			dst = append(dst, "&lt;"...)
		case '>':
			dst = append(dst, "&gt;"...)
		default:
			dst = append(dst, c)
		}
	}
	return dst
}
