package inject

import (
	"errors"
	"io"
	"iter"
)

// errStopped is what a feeder's Read returns once the feeder was stopped
// before the consumer had finished.
var errStopped = errors.New("inject: stopped")

// A feeder turns a consumer that pulls its input from an io.Reader (the HTML
// tokenizer, a gzip/brotli/zstd decoder) into something that is pushed to, one
// write at a time, without re-reading anything: the consumer runs as a
// coroutine (iter.Pull) that only advances inside push and close, on behalf of
// their caller, who waits. So there is no concurrency, and the consumer's state
// between writes is exactly where it stopped for want of input.
type feeder struct {
	chunk []byte // input not yet read by the consumer
	eof   bool
	done  bool // the consumer returned
	yield func(struct{}) bool
	next  func() (struct{}, bool)
	stop  func()
}

func newFeeder(consume func(io.Reader)) *feeder {
	f := new(feeder)
	f.next, f.stop = iter.Pull(func(yield func(struct{}) bool) {
		f.yield = yield
		consume(f)
	})
	return f
}

// push runs the consumer until it has read all of p or returned, and reports
// whether it has returned, and how much of p it left unread then. The
// consumer keeps no reference to p.
func (f *feeder) push(p []byte) (unread int, done bool) {
	if f.done {
		return len(p), true
	}
	f.chunk = p
	_, more := f.next()
	unread = len(f.chunk)
	f.chunk = nil
	f.done = !more
	return unread, f.done
}

// close gives the consumer io.EOF and runs it until it returns.
func (f *feeder) close() {
	f.eof = true
	for !f.done {
		_, more := f.next()
		f.done = !more
	}
	f.stop()
}

// abandon ends the consumer without letting it finish: its Read returns
// errStopped.
func (f *feeder) abandon() {
	f.done = true
	f.stop()
}

// Read is the consumer's side: it suspends the coroutine until push or close.
func (f *feeder) Read(p []byte) (int, error) {
	for len(f.chunk) == 0 {
		if f.eof {
			return 0, io.EOF
		}
		if !f.yield(struct{}{}) {
			return 0, errStopped
		}
	}
	n := copy(p, f.chunk)
	f.chunk = f.chunk[n:]
	return n, nil
}
