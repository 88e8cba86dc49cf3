package mux

import "sync"

// chunkSize is the size in bytes of one pooled receive chunk. Small frames share a chunk; large
// frames span several, so a stream holds memory in proportion to what it buffers.
const chunkSize = 16 << 10

type chunk struct {
	b    [chunkSize]byte
	r, w int // unread bytes are b[r:w]
}

var chunkPool = sync.Pool{New: func() any { return new(chunk) }}

func getChunk() *chunk {
	c := chunkPool.Get().(*chunk)
	c.r, c.w = 0, 0
	return c
}

// recvBuffer is a stream's queue of received, unread bytes: a FIFO of pooled chunks. Not safe
// for concurrent use; the stream's mutex guards it.
type recvBuffer struct {
	chunks []*chunk // chunks[head:] hold data, oldest first
	head   int
	n      int // bytes buffered
}

func (b *recvBuffer) len() int { return b.n }

// append takes ownership of filled chunks (the receive loop reads payload into them without
// holding the stream's lock). A small first chunk is copied into the free tail of the last
// buffered chunk, so a stream of small frames holds one chunk, not one per frame.
func (b *recvBuffer) append(cs []*chunk) {
	for i, c := range cs {
		cs[i] = nil
		size := c.w - c.r
		b.n += size
		if last := len(b.chunks) - 1; last >= b.head {
			t := b.chunks[last]
			if size <= chunkSize-t.w {
				t.w += copy(t.b[t.w:], c.b[c.r:c.w])
				chunkPool.Put(c)
				continue
			}
		}
		b.push(c)
	}
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
			chunkPool.Put(c)
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
		chunkPool.Put(b.chunks[i])
		b.chunks[i] = nil
	}
	b.chunks = b.chunks[:0]
	b.head, b.n = 0, 0
}
