package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// AppendFrame encodes m as one frame and appends it to dst.
func AppendFrame(dst []byte, m Message) ([]byte, error) {
	buf := bufPool.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 1<<20 {
			buf.Reset()
			bufPool.Put(buf)
		}
	}()
	buf.Reset()
	buf.Write([]byte{0, 0, 0, 0, byte(m.Type())})
	enc := msgpack.GetEncoder()
	enc.Reset(buf)
	enc.UseCompactInts(true)
	err := enc.Encode(m)
	msgpack.PutEncoder(enc)
	if err != nil {
		return dst, fmt.Errorf("wire: encode %T: %w", m, err)
	}
	b := buf.Bytes()
	n := len(b) - 4
	if uint64(n) > 1<<32-1 {
		return dst, ErrFrameTooLarge
	}
	binary.BigEndian.PutUint32(b, uint32(n))
	return append(dst, b...), nil
}

// WriteFrame encodes m and writes it to w with a single Write, so a frame
// is never interleaved with another writer's bytes on a stream.
func WriteFrame(w io.Writer, m Message) error {
	frame, err := AppendFrame(nil, m)
	if err != nil {
		return err
	}
	_, err = w.Write(frame)
	return err
}

// eagerAlloc is the largest frame body allocated before its bytes arrive.
const eagerAlloc = 64 << 10

// ReadFrame reads one frame of at most max body bytes. It never allocates
// more than max bytes whatever the peer declares.
func ReadFrame(r io.Reader, max int) (Type, []byte, error) {
	var hdr [HeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:4])
	if n < 1 {
		return 0, nil, fmt.Errorf("%w: empty frame", ErrMalformed)
	}
	if uint64(n-1) > uint64(max) {
		return 0, nil, fmt.Errorf("%w: %d bytes declared, cap %d", ErrFrameTooLarge, n-1, max)
	}
	size := int64(n - 1)
	if size <= eagerAlloc {
		body := make([]byte, size)
		if _, err := io.ReadFull(r, body); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, nil, err
		}
		return Type(hdr[4]), body, nil
	}
	// A large frame grows its buffer as bytes arrive, so a peer that
	// declares 64 MiB and then trickles (or stops) holds only what it sent.
	buf := bytes.NewBuffer(make([]byte, 0, eagerAlloc))
	if _, err := io.CopyN(buf, r, size); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return Type(hdr[4]), buf.Bytes(), nil
}

// Decode validates body and decodes it into the message type t names.
func Decode(t Type, body []byte) (Message, error) {
	m := newMessage(t)
	if m == nil {
		return nil, fmt.Errorf("%w: %d", ErrUnknownType, t)
	}
	if err := Validate(body); err != nil {
		return nil, err
	}
	dec := msgpack.GetDecoder()
	defer msgpack.PutDecoder(dec)
	dec.Reset(bytes.NewReader(body))
	if err := dec.Decode(m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if v, ok := m.(interface{ validate() error }); ok {
		if err := v.validate(); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
	}
	return m, nil
}
