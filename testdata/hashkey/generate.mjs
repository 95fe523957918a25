// Writes vectors.json: what the real hashKey of @tanstack/query-core returns for
// many query keys, for the Go tests of package inject (HashKey).
//
//   npm ci && node generate.mjs
//
// Each entry is {"key": <the key as JSON text>, "hash": <hashKey output>}, or
// {"key": ..., "error": <message>} when JSON.parse rejects the text (HashKey
// must fail too). Entries with "keyBase64" give the key as raw bytes, not all
// of them valid UTF-8; "key" is then those bytes decoded as a browser decodes
// them (TextDecoder), which is what the hash is computed from.
//
// The output is deterministic (seeded random), so re-running it changes
// nothing unless query-core's hashKey changes.

import { writeFileSync } from 'node:fs'
import { hashKey } from '@tanstack/query-core'

const vectors = []
const seen = new Set()

function add(text) {
  if (seen.has(text)) return
  seen.add(text)
  if (!text.isWellFormed()) {
    // Go reads vectors.json with encoding/json, which would turn a raw lone
    // surrogate into U+FFFD: lone surrogates must appear as \u escapes.
    throw new Error('key text with a raw lone surrogate: ' + JSON.stringify(text))
  }
  let value
  try {
    value = JSON.parse(text)
  } catch (e) {
    vectors.push({ key: text, error: String(e.message) })
    return
  }
  if (!Array.isArray(value)) throw new Error('not an array: ' + text)
  vectors.push({ key: text, hash: hashKey(value) })
}

function addBytes(list) {
  const bytes = Uint8Array.from(list)
  const text = new TextDecoder('utf-8').decode(bytes)
  const value = JSON.parse(text)
  vectors.push({ key: text, keyBase64: Buffer.from(bytes).toString('base64'), hash: hashKey(value) })
}

// addValue adds a key built in JS, as compact and as indented JSON text.
function addValue(value, indent = false) {
  add(JSON.stringify(value))
  if (indent) add(JSON.stringify(value, null, 2))
}

// --- Better Auth keys -------------------------------------------------------
for (const k of [
  ['auth', 'getSession'],
  ['auth', 'session'],
  ['auth', 'user', 'u1', 'listAccounts', null],
  ['auth', 'user', 'u1', 'listSessions', null],
  ['auth', 'organization', 'list', { limit: 10, offset: 0 }],
  ['auth', 'organization', 'getFullOrganization', { query: { organizationSlug: 'acme', organizationId: 'org_1' } }],
  ['auth', 'getSession', { query: { disableCookieCache: true, disableRefresh: false } }],
  ['better-auth', 'session', { fetchOptions: { headers: { 'x-b': '2', 'x-a': '1' } } }],
  ['auth', 'listAccounts', { userId: 'Zk9k3q1Tq0bH6VQp3pYcM', page: 1, sort: ['createdAt', 'desc'] }],
  ['session'],
  [],
]) addValue(k, true)

// --- strings ----------------------------------------------------------------
const allControls = Array.from({ length: 0x20 }, (_, i) => String.fromCharCode(i))
for (const c of allControls) addValue(['ctl', c, { [c]: c }])
addValue([allControls.join('') + '\x7f'])
for (const s of [
  '', '"', '\\', '/', '\\"', '"\\"', '\'', '`', '</script>', '</SCRIPT >', '<!--<script>', '<!--', '-->',
  '<script>alert(1)</script>', '</script><script>alert(1)</script>', '&amp;', '&', '<', '>', '<>&',
  '\u2028', '\u2029', 'a\u2028b\u2029c', '\u0085', '\u00a0', '\u00ad', '\u200b', '\u200d', '\ufeff',
  'é', 'e\u0301', 'Straße', '日本語', 'Ω≈ç√', 'русский', 'עברית', 'العربية', '\u{10000}', '\u{10ffff}',
  '😀', '👩‍👩‍👧‍👦', '🇫🇷', '𝄞', '\ue000', '\uf8ff', '\ufffd', '\ufffe', '\uffff',
  '\ud800', '\udbff', '\udc00', '\udfff', '\udc00\ud800', 'a\ud800b', '\ud83d', '\ude00', '\ud83d\ud83d\ude00',
  '\x00', 'nul\x00nul', '\x7f', '\x80', 'tab\there', 'cr\r\nlf',
]) {
  addValue([s])
  addValue(['k', { [s]: s }])
}

// --- numbers, written by hand as raw text ------------------------------------
const numbers = [
  '0', '-0', '0.0', '-0.0', '0e0', '-0e-0', '0E+5', '1', '-1', '1.0', '1.00000', '10', '100', '1e2', '1E2', '1e+2',
  '0.1', '0.2', '0.30000000000000004', '0.3', '1.5', '-1.5', '4.35', '0.5e1', '10.0e-1', '123.456',
  '1e20', '1e21', '1E21', '1e+21', '1.5e21', '999999999999999999999', '100000000000000000000', '123456789012345678901',
  '1e-6', '1e-7', '1E-7', '1.23e-6', '1.23e-7', '0.000001', '0.0000001', '0.00000123', '123e-9', '-5.5e-10',
  '123456789012345678901234567890', '-123456789012345678901234567890', '12345678901234567890',
  '9007199254740991', '9007199254740992', '9007199254740993', '9007199254740995', '18446744073709551615',
  '1.7976931348623157e308', '1.7976931348623158e308', '1.7976931348623159e308', '1e308', '1e309', '-1e309', '1e400', '-1e400',
  '5e-324', '4.9e-324', '2.4703282292062328e-324', '2.4703282292062327e-324', '2e-324', '3e-324', '1e-400', '-1e-400',
  '2.2250738585072014e-308', '2.2250738585072011e-308', '2.225073858507201e-308', '4.940656458412465441765687928682213723651e-324',
  '0.1000000000000000055511151231257827021181583404541015625', '0.10000000000000000555111512312578270211815834045410156250001',
  '7.0e-10', '1.0e-5', '1e-5', '1e-4', '0.0001', '1e15', '1e16', '1e17', '123e18', '1.2345e19', '1.2345e20', '1.2345e21',
  '2.5', '3.5', '0.25', '1.1', '1.7', '1e23', '8.41e21', '5e-7', '5e-6', '1.0000000000000002', '0.9999999999999999',
  '4294967294', '4294967295', '4294967296',
]
add('[' + numbers.join(',') + ']')
for (const n of numbers) add('[' + n + ']')
add('[' + numbers.map((n) => '{"n":' + n + '}').join(', ') + ']')

// --- objects: key order, array indices, duplicates, __proto__ -----------------
for (const text of [
  '[{"b":1,"a":2,"10":3,"9":4}]',
  '[{"a":1,"a":2}]',
  '[{"a":1,"b":2,"a":3}]',
  '[{"10":1,"10":2,"9":3}]',
  '[{"a":{"x":1},"a":{"y":2}}]',
  '[{"a":1,"b":{"d":1,"c":2,"d":3},"a":[{"z":1,"y":2}]}]',
  '[{"0":"a","1":"b","01":"c","00":"d","-1":"e","1.5":"f","+1":"g"," 1":"h","1 ":"i","1e3":"j"}]',
  '[{"4294967294":1,"4294967295":2,"4294967296":3,"99999999999":4,"0":5,"2":6,"10":7,"1":8}]',
  '[{"\\u0663":1,"3":2,"\\uff13":3}]',
  '[{"__proto__":{"x":1},"a":1}]',
  '[{"__proto__":5,"a":1}]',
  '[{"__proto__":null,"b":1,"a":2}]',
  '[{"__proto__":[1,2],"c":{"__proto__":{"y":2},"k":1}}]',
  '[{"__proto__":1,"__proto__":2}]',
  '[{"__proto":1,"__proto__x":2,"_proto_":3}]',
  '[{"constructor":null}]',
  '[{"constructor":1,"b":1,"a":2}]',
  '[{"constructor":{"prototype":{"isPrototypeOf":1}},"b":1,"a":2}]',
  '[{"hasOwnProperty":1,"toString":2,"valueOf":3,"isPrototypeOf":4,"toJSON":5}]',
  '[{"toJSON":{"a":1}}]',
  '[{"":1,"a":2,"A":3,"_":4,"ä":5,"\\ue000":6,"\\uffff":7,"😀":8,"𝄞":9,"\\ud800":10,"\\udc00":11,"\\u0000":12,"~":13}]',
  '[{"\\ud83d\\ude00":1,"\\uffff":2,"\\ue000":3,"\\ud7ff":4,"\\uff61":5}]',
  '[{"z":1},{"y":2,"x":{"w":3,"v":[{"u":4,"t":5}]}}]',
  '[{}]', '[[]]', '[{},[],[{}],[[]],{"a":{}},{"a":[]}]', '[]',
  '[ { "b" : 1 , "a" : 2 } , [ 1 , 2 ] , "x" , null , true , false ]',
  '\t\n\r [\t\n\r {"b"\t:\n1\r,"a" :2}\t]\n\r ',
  '[true,false,null,"true","null",0,""]',
  '["\\/\\b\\f\\n\\r\\t\\"\\\\","\\u0041\\u00e9\\u4e2d\\ud83d\\ude00","\\u003c/script\\u003e","\\u2028\\u2029"]',
  '["\\uD83D\\uDE00","\\uDBFF\\uDFFF","\\uD800\\uDC00","\\uDC00\\uD800","\\uD800\\u0041"]',
]) add(text)

// Texts that JSON.parse rejects.
for (const text of [
  '', ' ', '[', ']', '[1,]', '[,1]', '[1 2]', '[01]', '[-01]', '[1.]', '[.5]', '[1e]', '[1e+]', '[-]', '[+1]',
  '[0x10]', '[Infinity]', '[NaN]', '[undefined]', "['a']", '[tru]', '[nulll]', '[True]', '["a]', '["\\x41"]',
  '["\\u12"]', '["\\u12g4"]', '["\\U0041"]', '["\\a"]', '["\t"]', '["\n"]', '["\x00"]', '["\x1f"]', '[1] x', '[1][2]',
  '[1]]', '{"a":1,}', '[{"a" 1}]', '[{a:1}]', '[{"a":1,,"b":2}]', '[{1:2}]', '\ufeff[1]', '[1,\u000b2]',
  '\u00a0[1]', '[1]\u00a0', '[\u20281]', '[1,2', '[{"a":1', '["\\', '["\\u', '[1e5.5]', '[1.5e5e5]', '[--1]', '[- 1]',
]) add(text)

// --- deep nesting and big objects --------------------------------------------
add('['.repeat(1000) + ']'.repeat(1000))
add('[' + '{"a":'.repeat(500) + '1' + '}'.repeat(500) + ']')
{
  let v = 'leaf'
  for (let i = 0; i < 200; i++) v = i % 2 ? [v, i] : { [`k${200 - i}`]: v, a: i, [String(i)]: null }
  addValue([v])
}

// --- random keys (seeded) -----------------------------------------------------
function mulberry32(seed) {
  return function () {
    seed |= 0
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
const rand = mulberry32(0x5eed)
const int = (n) => Math.floor(rand() * n)
const pick = (a) => a[int(a.length)]

const charPools = [
  () => String.fromCharCode(0x20 + int(0x5f)), // printable ASCII
  () => String.fromCharCode(int(0x20)), // control
  () => pick(['<', '>', '&', '"', '\\', '/', '\u2028', '\u2029', '\x7f']),
  () => String.fromCharCode(0x80 + int(0x780)), // Latin and beyond
  () => String.fromCharCode(0x4e00 + int(0x5000)), // CJK
  () => String.fromCharCode(0xe000 + int(0x2000)), // U+E000..U+FFFF: sorts after astral in UTF-16
  () => String.fromCodePoint(0x10000 + int(0x100000)), // astral
  () => String.fromCodePoint(pick([0x1f600, 0x1f4a9, 0x1d11e, 0x10ffff, 0x10000])),
  () => String.fromCharCode(0xd800 + int(0x800)), // lone surrogate
]
function randString(max = 12) {
  let s = ''
  const n = int(max + 1)
  for (let i = 0; i < n; i++) s += pick(charPools)()
  return s
}
function randKey() {
  switch (int(6)) {
    case 0:
      return String(int(20))
    case 1:
      return pick(['0', '1', '01', '10', '9', '4294967294', '4294967295', '-1', '1.0', '1e2', '007', '2147483648', '99', '100'])
    case 2:
      return pick(['a', 'b', 'B', 'id', 'userId', 'limit', 'offset', 'query', '__proto__', 'constructor', '', '_', 'é'])
    default:
      return randString(6)
  }
}
function randNumber() {
  switch (int(6)) {
    case 0:
      return int(1000) - 500
    case 1:
      return (rand() - 0.5) * 10 ** (int(40) - 20)
    case 2: {
      // random bits: any finite double
      const b = new DataView(new ArrayBuffer(8))
      b.setUint32(0, int(2 ** 32))
      b.setUint32(4, int(2 ** 32))
      const f = b.getFloat64(0)
      return Number.isFinite(f) ? f : 0
    }
    case 3:
      return Number.MAX_SAFE_INTEGER + int(1000) - 500
    case 4:
      return rand()
    default:
      return int(2 ** 31) * 2 ** int(80)
  }
}
function randValue(depth) {
  const r = int(depth > 4 ? 5 : 8)
  switch (r) {
    case 0:
      return null
    case 1:
      return rand() < 0.5
    case 2:
    case 3:
      return randNumber()
    case 4:
      return randString()
    case 5:
    case 6: {
      const a = []
      for (let i = int(5); i > 0; i--) a.push(randValue(depth + 1))
      return a
    }
    default: {
      const o = {}
      for (let i = int(7); i > 0; i--) o[randKey()] = randValue(depth + 1)
      return o
    }
  }
}
for (let i = 0; i < 1500; i++) {
  const key = []
  for (let j = int(5); j >= 0; j--) key.push(randValue(0))
  addValue(key, i % 10 === 0)
}

// Random number texts: long mantissas, odd exponents, parsed by JS itself.
for (let i = 0; i < 600; i++) {
  let digits = String(1 + int(9))
  for (let j = int(30); j > 0; j--) digits += int(10)
  const point = int(digits.length + 1)
  let text = (rand() < 0.3 ? '-' : '') + (point === 0 ? '0.' + digits : digits.slice(0, point) + (point < digits.length ? '.' + digits.slice(point) : ''))
  if (rand() < 0.6) text += pick(['e', 'E']) + pick(['', '+', '-']) + int(340)
  add('[' + text + ']')
}

// Random objects whose keys come in a shuffled order, written by hand (so the
// text keeps duplicates).
for (let i = 0; i < 200; i++) {
  const members = []
  for (let j = int(12); j >= 0; j--) members.push(JSON.stringify(randKey()) + ':' + JSON.stringify(randValue(3)))
  add('[{' + members.join(',') + '}]')
}

// --- bytes that are not all valid UTF-8 -------------------------------------
const utf8 = (s) => [...new TextEncoder().encode(s)]
for (const bad of [
  [0x80], [0xbf], [0xc0, 0x80], [0xc1, 0xbf], [0xc2], [0xc2, 0x41], [0xe2, 0x82], [0xe2, 0x82, 0x41], [0xe0, 0x80, 0x80],
  [0xe0, 0x9f, 0xbf], [0xed, 0xa0, 0x80], [0xed, 0xbf, 0xbf], [0xed, 0x9f, 0xbf], [0xef, 0xbf], [0xf0, 0x9f, 0x98],
  [0xf0, 0x9f, 0x98, 0x41], [0xf0, 0x80, 0x80, 0x80], [0xf0, 0x8f, 0xbf, 0xbf], [0xf4, 0x90, 0x80, 0x80], [0xf4, 0x8f, 0xbf],
  [0xf5, 0x80, 0x80, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xfe], [0xff], [0xff, 0xfe], [0x80, 0x80, 0x80],
  [0xe2, 0x28, 0xa1], [0xc3, 0xa9, 0xa9], [0xf1, 0x80, 0x80], [0xf1, 0x80], [0xe1, 0x80], [0xe1],
]) {
  addBytes([...utf8('["'), ...bad, ...utf8('"]')])
  addBytes([...utf8('[{"'), ...bad, ...utf8('":1,"a":"x'), ...bad, ...utf8('y"}]')])
}

const out = '[\n' + vectors.map((v) => JSON.stringify(v)).join(',\n') + '\n]\n'
writeFileSync(new URL('./vectors.json', import.meta.url), out)
console.log(`wrote ${vectors.length} vectors`)
