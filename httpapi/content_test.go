package httpapi

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

type failingWriter struct {
	n   int
	err error
}

func (f *failingWriter) Write(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, f.err
	}
	f.n--
	return len(p), nil
}

func TestCopyPipelined(t *testing.T) {
	data := bytes.Repeat([]byte("pipelined "), 300_000) // several buffers
	var out bytes.Buffer
	n, err := copyPipelined(&out, bytes.NewReader(data))
	if err != nil || n != int64(len(data)) || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("copy: %d bytes, %v", n, err)
	}
	n, err = copyPipelined(&out, bytes.NewReader(nil))
	if err != nil || n != 0 {
		t.Fatalf("empty copy: %d, %v", n, err)
	}

	// The client goes away: the copy stops, and the reader goroutine with it.
	gone := errors.New("client gone")
	if _, err := copyPipelined(&failingWriter{n: 1, err: gone}, bytes.NewReader(data)); !errors.Is(err, gone) {
		t.Fatalf("write error: %v", err)
	}

	// A read error (a hash mismatch at the end) is returned, and the chunk
	// it ended is not written.
	bad := errors.New("hash mismatch")
	out.Reset()
	r := io.MultiReader(bytes.NewReader(data[:1000]), iotest.ErrReader(bad))
	n, err = copyPipelined(&out, r)
	if !errors.Is(err, bad) || n != 0 {
		t.Fatalf("read error: %d bytes written, %v", n, err)
	}
}
