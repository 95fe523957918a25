package inject

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth bounds the nesting of arrays and objects, as encoding/json does,
// so that hostile input cannot exhaust the stack.
const maxDepth = 10000

// EncodeJSON validates raw JSON and re-encodes it compact and HTML-safe: every
// <, >, &, U+2028 and U+2029 becomes \u003c, \u003e, \u0026, \u2028, \u2029,
// so the result can sit inside a <script> element. Object key order, duplicated
// keys and the text of numbers are kept exactly; strings are decoded and
// re-encoded, so no raw string byte reaches the output unvalidated. Invalid
// UTF-8 becomes U+FFFD (one per maximal ill-formed subsequence, as a browser's
// decoder does); a lone surrogate escape such as \ud800 stays an escape, so
// JSON.parse gives back the very string it was given.
func EncodeJSON(raw []byte) ([]byte, error) {
	p := parser{s: raw}
	out := make([]byte, 0, len(raw)+len(raw)/8)
	p.skipSpace()
	out, err := p.encodeValue(out)
	if err != nil {
		return nil, err
	}
	if err := p.end(); err != nil {
		return nil, err
	}
	return out, nil
}

// HashKey returns what TanStack Query's hashKey(JSON.parse(keyJSON)) returns:
//
//	JSON.stringify(key, (_, v) => isPlainObject(v)
//	  ? Object.keys(v).sort().reduce((r, k) => { r[k] = v[k]; return r }, {})
//	  : v)
//
// The JavaScript semantics reproduced here: numbers become IEEE doubles and are
// written as Number#toString writes them (1.0 -> 1, 1e21 -> 1e+21, -0 -> 0,
// out of range -> null); of duplicated keys the last wins; keys are sorted by
// UTF-16 code units, but the new object enumerates array-index keys
// ("0".."4294967294") first, in numeric order; a "__proto__" key is dropped,
// since r["__proto__"] = v assigns the prototype instead of a property; strings
// are escaped as JSON.stringify does (only ", \ and control characters, lone
// surrogates as \udxxx). The key must be a JSON array, as TanStack requires.
func HashKey(keyJSON []byte) (string, error) {
	p := parser{s: keyJSON}
	p.skipSpace()
	if p.pos >= len(p.s) || p.s[p.pos] != '[' {
		return "", errors.New("inject: query key must be a JSON array")
	}
	out, err := p.hashValue(make([]byte, 0, len(keyJSON)))
	if err != nil {
		return "", err
	}
	if err := p.end(); err != nil {
		return "", err
	}
	return string(out), nil
}

// parser reads JSON text (RFC 8259, which is what JSON.parse accepts).
type parser struct {
	s     []byte
	pos   int
	depth int
	units []uint16 // scratch for the string being decoded
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("inject: invalid JSON at offset %d: %s", p.pos, fmt.Sprintf(format, args...))
}

func (p *parser) skipSpace() {
	for p.pos < len(p.s) {
		switch p.s[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) end() error {
	p.skipSpace()
	if p.pos != len(p.s) {
		return p.errorf("trailing data")
	}
	return nil
}

// peek returns the next byte, or 0 at the end of the input (0 is never valid
// there, so callers report it as unexpected).
func (p *parser) peek() byte {
	if p.pos < len(p.s) {
		return p.s[p.pos]
	}
	return 0
}

func (p *parser) unexpected() error {
	if p.pos >= len(p.s) {
		return p.errorf("unexpected end of input")
	}
	return p.errorf("unexpected %q", p.s[p.pos])
}

// expect consumes c, after optional white space, and the white space after it.
func (p *parser) expect(c byte) error {
	p.skipSpace()
	if p.peek() != c {
		return p.unexpected()
	}
	p.pos++
	p.skipSpace()
	return nil
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > maxDepth {
		return p.errorf("nested too deeply")
	}
	p.pos++ // the '[' or '{'
	p.skipSpace()
	return nil
}

// more reports, after a member, whether another one follows (a ',' was
// consumed) or the container ended (close was consumed).
func (p *parser) more(close byte) (bool, error) {
	p.skipSpace()
	switch p.peek() {
	case ',':
		p.pos++
		p.skipSpace()
		return true, nil
	case close:
		p.pos++
		p.depth--
		return false, nil
	}
	return false, p.unexpected()
}

// literal consumes true, false or null.
func (p *parser) literal() ([]byte, error) {
	for _, lit := range [...]string{"true", "false", "null"} {
		if bytes.HasPrefix(p.s[p.pos:], []byte(lit)) {
			p.pos += len(lit)
			return p.s[p.pos-len(lit) : p.pos], nil
		}
	}
	return nil, p.unexpected()
}

// number consumes -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? and returns its text.
func (p *parser) number() ([]byte, error) {
	start := p.pos
	digits := func() int {
		n := 0
		for p.pos < len(p.s) && '0' <= p.s[p.pos] && p.s[p.pos] <= '9' {
			p.pos++
			n++
		}
		return n
	}
	if p.peek() == '-' {
		p.pos++
	}
	switch c := p.peek(); {
	case c == '0':
		p.pos++
	case '1' <= c && c <= '9':
		digits()
	default:
		return nil, p.unexpected()
	}
	if p.peek() == '.' {
		p.pos++
		if digits() == 0 {
			return nil, p.unexpected()
		}
	}
	if c := p.peek(); c == 'e' || c == 'E' {
		p.pos++
		if c := p.peek(); c == '+' || c == '-' {
			p.pos++
		}
		if digits() == 0 {
			return nil, p.unexpected()
		}
	}
	return p.s[start:p.pos], nil
}

// str decodes a string into UTF-16 code units, JavaScript's own string form:
// escapes give their unit as is (so a lone surrogate survives), raw UTF-8 is
// decoded with each maximal ill-formed subsequence replaced by U+FFFD. The
// result is valid until the next call.
func (p *parser) str() ([]uint16, error) {
	if p.peek() != '"' {
		return nil, p.unexpected()
	}
	p.pos++
	u := p.units[:0]
	for {
		if p.pos >= len(p.s) {
			return nil, p.errorf("unterminated string")
		}
		c := p.s[p.pos]
		switch {
		case c == '"':
			p.pos++
			p.units = u
			return u, nil
		case c == '\\':
			if p.pos+1 >= len(p.s) {
				p.pos++
				return nil, p.errorf("unterminated string")
			}
			p.pos += 2
			switch e := p.s[p.pos-1]; e {
			case '"', '\\', '/':
				u = append(u, uint16(e))
			case 'b':
				u = append(u, '\b')
			case 'f':
				u = append(u, '\f')
			case 'n':
				u = append(u, '\n')
			case 'r':
				u = append(u, '\r')
			case 't':
				u = append(u, '\t')
			case 'u':
				if p.pos+4 > len(p.s) {
					return nil, p.errorf("short \\u escape")
				}
				var v uint16
				for _, h := range p.s[p.pos : p.pos+4] {
					switch {
					case '0' <= h && h <= '9':
						h -= '0'
					case 'a' <= h && h <= 'f':
						h -= 'a' - 10
					case 'A' <= h && h <= 'F':
						h -= 'A' - 10
					default:
						return nil, p.errorf("invalid \\u escape")
					}
					v = v<<4 | uint16(h)
				}
				p.pos += 4
				u = append(u, v)
			default:
				p.pos--
				return nil, p.errorf("invalid escape \\%c", e)
			}
		case c < 0x20:
			return nil, p.errorf("control character in string")
		case c < utf8.RuneSelf:
			p.pos++
			u = append(u, uint16(c))
		default:
			r, size := decodeRune(p.s[p.pos:])
			p.pos += size
			u = utf16.AppendRune(u, r)
		}
	}
}

// decodeRune is utf8.DecodeRune, except that an ill-formed sequence is
// consumed as one maximal subpart (Unicode 3.9, the WHATWG "utf-8 decode"
// used by TextDecoder and browsers), not byte by byte.
func decodeRune(b []byte) (rune, int) {
	r, size := utf8.DecodeRune(b)
	if r != utf8.RuneError || size != 1 {
		return r, size
	}
	// Second-byte ranges by lead byte (Unicode Table 3-7).
	lo, hi, n := byte(0x80), byte(0xBF), 0
	switch c := b[0]; {
	case 0xC2 <= c && c <= 0xDF:
		n = 1
	case c == 0xE0:
		lo, n = 0xA0, 2
	case c == 0xED:
		hi, n = 0x9F, 2
	case 0xE1 <= c && c <= 0xEF:
		n = 2
	case c == 0xF0:
		lo, n = 0x90, 3
	case 0xF1 <= c && c <= 0xF3:
		n = 3
	case c == 0xF4:
		hi, n = 0x8F, 3
	default:
		return utf8.RuneError, 1
	}
	i := 1
	for ; i <= n && i < len(b); i++ {
		if b[i] < lo || b[i] > hi {
			break
		}
		lo, hi = 0x80, 0xBF
	}
	return utf8.RuneError, i
}

const hexDigits = "0123456789abcdef"

// appendString writes units as a JSON string the way JSON.stringify does:
// ", \ and control characters escaped (\b \f \n \r \t, others \u00xx), lone
// surrogates as \udxxx, everything else as UTF-8. With htmlSafe, <, >, &,
// U+2028 and U+2029 are escaped too.
func appendString(dst []byte, units []uint16, htmlSafe bool) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(units); i++ {
		u := units[i]
		switch {
		case u == '"':
			dst = append(dst, '\\', '"')
		case u == '\\':
			dst = append(dst, '\\', '\\')
		case u < 0x20:
			switch u {
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = appendUnitEscape(dst, u)
			}
		case htmlSafe && (u == '<' || u == '>' || u == '&'):
			dst = appendUnitEscape(dst, u)
		case u < utf8.RuneSelf:
			dst = append(dst, byte(u))
		case htmlSafe && (u == 0x2028 || u == 0x2029):
			dst = appendUnitEscape(dst, u)
		case utf16.IsSurrogate(rune(u)):
			if u < 0xDC00 && i+1 < len(units) && 0xDC00 <= units[i+1] && units[i+1] <= 0xDFFF {
				dst = utf8.AppendRune(dst, utf16.DecodeRune(rune(u), rune(units[i+1])))
				i++
			} else {
				dst = appendUnitEscape(dst, u)
			}
		default:
			dst = utf8.AppendRune(dst, rune(u))
		}
	}
	return append(dst, '"')
}

func appendUnitEscape(dst []byte, u uint16) []byte {
	return append(dst, '\\', 'u', hexDigits[u>>12], hexDigits[u>>8&15], hexDigits[u>>4&15], hexDigits[u&15])
}

// array reads a JSON array and writes it compactly, each element with value
// (encodeValue or hashValue, whose only difference is objects and strings).
func (p *parser) array(out []byte, value func([]byte) ([]byte, error)) ([]byte, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	out = append(out, '[')
	if p.peek() == ']' {
		p.pos++
		p.depth--
		return append(out, ']'), nil
	}
	for {
		var err error
		if out, err = value(out); err != nil {
			return nil, err
		}
		more, err := p.more(']')
		if err != nil {
			return nil, err
		}
		if !more {
			return append(out, ']'), nil
		}
		out = append(out, ',')
	}
}

// encodeValue copies one value, re-encoding its strings HTML-safe.
func (p *parser) encodeValue(out []byte) ([]byte, error) {
	switch c := p.peek(); c {
	case '{':
		if err := p.enter(); err != nil {
			return nil, err
		}
		out = append(out, '{')
		if p.peek() == '}' {
			p.pos++
			p.depth--
			return append(out, '}'), nil
		}
		for {
			key, err := p.str()
			if err != nil {
				return nil, err
			}
			out = append(appendString(out, key, true), ':')
			if err := p.expect(':'); err != nil {
				return nil, err
			}
			if out, err = p.encodeValue(out); err != nil {
				return nil, err
			}
			more, err := p.more('}')
			if err != nil {
				return nil, err
			}
			if !more {
				return append(out, '}'), nil
			}
			out = append(out, ',')
		}
	case '[':
		return p.array(out, p.encodeValue)
	case '"':
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		return appendString(out, s, true), nil
	case 't', 'f', 'n':
		lit, err := p.literal()
		return append(out, lit...), err
	default:
		num, err := p.number()
		return append(out, num...), err
	}
}

// member is one property of an object being hashed.
type member struct {
	key   []uint16
	index int64 // the array index the key names, or -1
	value []byte
}

// hashValue appends the hashKey encoding of one value.
func (p *parser) hashValue(out []byte) ([]byte, error) {
	switch c := p.peek(); c {
	case '{':
		if err := p.enter(); err != nil {
			return nil, err
		}
		var members []member
		if p.peek() == '}' {
			p.pos++
			p.depth--
		} else {
			for {
				key, err := p.str()
				if err != nil {
					return nil, err
				}
				m := member{key: slices.Clone(key), index: arrayIndex(key)}
				if err := p.expect(':'); err != nil {
					return nil, err
				}
				if m.value, err = p.hashValue(nil); err != nil {
					return nil, err
				}
				members = append(members, m)
				more, err := p.more('}')
				if err != nil {
					return nil, err
				}
				if !more {
					break
				}
			}
		}
		// Stable, so that of equal keys the last one (JSON.parse's winner)
		// ends each run.
		slices.SortStableFunc(members, compareMembers)
		out = append(out, '{')
		first := true
		for i, m := range members {
			if i+1 < len(members) && slices.Equal(m.key, members[i+1].key) {
				continue // a later duplicate overrides it
			}
			if isProto(m.key) {
				continue // r["__proto__"] = v sets the prototype: no property
			}
			if !first {
				out = append(out, ',')
			}
			first = false
			out = append(appendString(out, m.key, false), ':')
			out = append(out, m.value...)
		}
		return append(out, '}'), nil
	case '[':
		return p.array(out, p.hashValue)
	case '"':
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		return appendString(out, s, false), nil
	case 't', 'f', 'n':
		lit, err := p.literal()
		return append(out, lit...), err
	default:
		num, err := p.number()
		if err != nil {
			return nil, err
		}
		return appendJSNumber(out, num)
	}
}

// compareMembers orders keys as the object built by hashKey enumerates them:
// array indices first in numeric order, then the rest in sort() order, which
// compares UTF-16 code units.
func compareMembers(a, b member) int {
	switch {
	case a.index >= 0 && b.index >= 0:
		return cmp.Compare(a.index, b.index)
	case a.index >= 0:
		return -1
	case b.index >= 0:
		return 1
	}
	return slices.Compare(a.key, b.key)
}

// arrayIndex returns the value of a key that is an array index (the canonical
// decimal form of an integer from 0 to 2^32-2), or -1.
func arrayIndex(key []uint16) int64 {
	if len(key) == 0 || len(key) > 10 || (key[0] == '0' && len(key) > 1) {
		return -1
	}
	var n int64
	for _, u := range key {
		if u < '0' || u > '9' {
			return -1
		}
		n = n*10 + int64(u-'0')
	}
	if n > math.MaxUint32-1 {
		return -1
	}
	return n
}

func isProto(key []uint16) bool {
	const proto = "__proto__"
	if len(key) != len(proto) {
		return false
	}
	for i, u := range key {
		if u != uint16(proto[i]) {
			return false
		}
	}
	return true
}

// appendJSNumber writes JSON number text as JSON.stringify(JSON.parse(text))
// does: the nearest double, written by Number#toString; a value beyond the
// double range is Infinity, which JSON.stringify writes as null.
func appendJSNumber(dst, text []byte) ([]byte, error) {
	f, err := strconv.ParseFloat(string(text), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return nil, fmt.Errorf("inject: number %q: %w", text, err)
	}
	return appendNumberToString(dst, f), nil
}

// appendNumberToString implements Number::toString(x) (ECMA-262 6.1.6.1.20)
// for radix 10, with Go's shortest round-trip digits as the digits s of k.
func appendNumberToString(dst []byte, f float64) []byte {
	switch {
	case math.IsInf(f, 0) || math.IsNaN(f):
		return append(dst, "null"...)
	case f == 0: // also -0
		return append(dst, '0')
	case f < 0:
		dst = append(dst, '-')
		f = -f
	}
	// 'e' with the shortest precision gives d[.ddd]e±XX: the digits and the
	// exponent n-1 of the spec's s × 10^(n-k).
	var buf [32]byte
	e := strconv.AppendFloat(buf[:0], f, 'e', -1, 64)
	mant, exp, _ := strings.Cut(string(e), "e")
	digits := strings.Replace(mant, ".", "", 1)
	x, _ := strconv.Atoi(exp)
	n, k := x+1, len(digits)
	switch {
	case k <= n && n <= 21:
		dst = append(dst, digits...)
		for range n - k {
			dst = append(dst, '0')
		}
	case 0 < n && n <= 21:
		dst = append(dst, digits[:n]...)
		dst = append(dst, '.')
		dst = append(dst, digits[n:]...)
	case -6 < n && n <= 0:
		dst = append(dst, '0', '.')
		for range -n {
			dst = append(dst, '0')
		}
		dst = append(dst, digits...)
	default:
		dst = append(dst, digits[0])
		if k > 1 {
			dst = append(dst, '.')
			dst = append(dst, digits[1:]...)
		}
		dst = append(dst, 'e')
		if n-1 >= 0 {
			dst = append(dst, '+')
		}
		dst = strconv.AppendInt(dst, int64(n-1), 10)
	}
	return dst
}
