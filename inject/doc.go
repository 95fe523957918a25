// Package inject puts Better Auth data into HTML pages as TanStack Query
// dehydrated state: a <script type="application/json"> element that the
// client hydrates its QueryClient from, so its first render has the session.
//
// It owns three things, used in this order by the HTTP handler:
//
//   - the state: HashKey computes the queryHash exactly as TanStack's
//     hashKey does in the browser, EncodeJSON makes Better Auth's JSON safe
//     inside a <script> element, AppendScript writes the element;
//   - the place: an Injector streams a page through and writes the element
//     after its <head> (or before its first other tag), holding at most the
//     first MaxPrefix bytes;
//   - the response: a ResponseWriter decides from the status and header
//     whether a response is a page to inject into, decodes gzip, br and zstd
//     bodies on the way, and fixes the header up (no caching by others,
//     Vary: Cookie).
//
// It depends on nothing but the standard library, golang.org/x/net/html and
// the decoders.
package inject
