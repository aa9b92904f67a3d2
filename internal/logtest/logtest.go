// Package logtest captures the log output of code under test.
package logtest

import (
	"bytes"
	"sync"
)

// Buffer is a bytes.Buffer that several goroutines may write at once, such as the handlers
// of a test server or a job queue's workers, while the test reads what they wrote.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
