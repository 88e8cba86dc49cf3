package mux

import "sync"

// Receive chunks come in two sizes, in bytes: small frames go into small chunks (and share
// them), large payloads into large ones, which the receiver fills straight from the socket
// when its read buffer is empty, so bulk data is copied once from the kernel to the chunk and
// once to the reader. (A Read that reads the connection itself gets its data with no chunk.)
const (
	smallChunk = 4 << 10
	largeChunk = 64 << 10
)

type chunk struct {
	b    []byte // len(b) is the chunk's size class
	r, w int    // unread bytes are b[r:w]
}

var (
	smallPool = sync.Pool{New: func() any { return &chunk{b: make([]byte, smallChunk)} }}
	largePool = sync.Pool{New: func() any { return &chunk{b: make([]byte, largeChunk)} }}
)

// getChunk returns an empty chunk suited to a payload of n more bytes.
func getChunk(n int) *chunk {
	var c *chunk
	if n > smallChunk {
		c = largePool.Get().(*chunk)
	} else {
		c = smallPool.Get().(*chunk)
	}
	c.r, c.w = 0, 0
	return c
}

func putChunk(c *chunk) {
	if len(c.b) == largeChunk {
		largePool.Put(c)
	} else {
		smallPool.Put(c)
	}
}

// recvBuffer is a stream's queue of received, unread bytes: a FIFO of pooled chunks. Not safe
// for concurrent use; the session's mutex guards it.
type recvBuffer struct {
	chunks []*chunk // chunks[head:] hold data, oldest first
	head   int
	n      int // bytes buffered
}

func (b *recvBuffer) len() int { return b.n }

// add takes ownership of a filled chunk (the receiver reads payload into it without holding
// the session's lock). A chunk that fits is copied into the free tail of the last buffered
// chunk, so a stream of small frames holds one chunk, not one per frame. One that does not fit
// fills that tail first when the tail is at least a fifth of its chunk, and its rest moves to
// the front of its own chunk, leaving all its free space at the tail for what comes next. So
// every buffered chunk but the last is more than four fifths full: however a peer fragments
// its frames, the chunks hold at most a quarter more than the bytes buffered, plus the last
// chunk's free tail.
func (b *recvBuffer) add(c *chunk) {
	size := c.w - c.r
	b.n += size
	if last := len(b.chunks) - 1; last >= b.head {
		t := b.chunks[last]
		room := len(t.b) - t.w
		if size <= room {
			t.w += copy(t.b[t.w:], c.b[c.r:c.w])
			putChunk(c)
			return
		}
		if room >= len(t.b)/5 {
			t.w += copy(t.b[t.w:], c.b[c.r:c.r+room])
			c.w = copy(c.b, c.b[c.r+room:c.w])
			c.r = 0
		}
	}
	b.push(c)
}

// push appends one chunk, compacting the slice's consumed front so it does not grow without
// bound.
func (b *recvBuffer) push(c *chunk) {
	if b.head > 0 && len(b.chunks) == cap(b.chunks) {
		n := copy(b.chunks, b.chunks[b.head:])
		clear(b.chunks[n:])
		b.chunks = b.chunks[:n]
		b.head = 0
	}
	b.chunks = append(b.chunks, c)
}

// read copies up to len(p) buffered bytes into p and returns drained chunks to the pool.
func (b *recvBuffer) read(p []byte) int {
	n := 0
	for n < len(p) && b.head < len(b.chunks) {
		c := b.chunks[b.head]
		k := copy(p[n:], c.b[c.r:c.w])
		c.r += k
		n += k
		if c.r == c.w {
			b.chunks[b.head] = nil
			b.head++
			putChunk(c)
		}
	}
	if b.head == len(b.chunks) {
		b.chunks = b.chunks[:0]
		b.head = 0
	}
	b.n -= n
	return n
}

// release returns every chunk to the pool and forgets the data.
func (b *recvBuffer) release() {
	for i := b.head; i < len(b.chunks); i++ {
		putChunk(b.chunks[i])
		b.chunks[i] = nil
	}
	b.chunks = b.chunks[:0]
	b.head, b.n = 0, 0
}
