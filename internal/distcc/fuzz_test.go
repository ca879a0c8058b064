package distcc

import (
	"bytes"
	"io"
	"testing"
	"testing/iotest"
)

// FuzzReply feeds arbitrary bytes to the reply parser as distccd's
// answer. It must never panic, every failure must be a typed error, and a
// success must be exactly a well-formed reply: the bytes re-encode to
// themselves, and an object comes back if and only if the status is 0.
func FuzzReply(f *testing.F) {
	f.Add(okReply)
	f.Add(encodeReply(1, 1<<8, []byte("error: x\n"), nil, nil))
	f.Add(encodeReply(1, 9, nil, nil, nil))
	f.Add(encodeReply(1, 110<<8, []byte("failed to exec"), nil, nil))
	f.Add(encodeReply(1, 0, nil, nil, nil))
	f.Add(encodeReply(2, 0, nil, nil, okObject))
	f.Add(cat(okReply, []byte("x")))
	f.Add(okReply[:len(okReply)-3])
	f.Add([]byte("DONE00000001STAT0000000gSERR"))
	f.Add([]byte{})
	lim := Limits{MaxStderr: 1 << 12, MaxStdout: 1 << 12, MaxObject: 1 << 16}.withDefaults()
	f.Fuzz(func(t *testing.T, data []byte) {
		var r io.Reader = bytes.NewReader(data)
		if len(data) > 0 && data[len(data)-1]&1 == 1 {
			r = iotest.OneByteReader(r) // partial reads, as from a socket
		}
		rep, err := readReply(r, lim)
		if err != nil {
			if rep != nil {
				t.Fatalf("reply and error: %+v, %v", rep, err)
			}
			switch KindOf(err) {
			case KindProtocol:
			case KindRefused:
				if len(data) != 0 {
					t.Fatalf("refused after %d bytes: %v", len(data), err)
				}
			default:
				t.Fatalf("untyped or unexpected error: %v", err)
			}
			return
		}
		st := rep.status
		raw := uint32(st.exitCode<<8 | st.signal)
		if st.core {
			raw |= 0x80
		}
		if !bytes.Equal(data, encodeReply(protocolVersion, raw, rep.stderr, rep.stdout, rep.object)) {
			t.Fatalf("accepted a reply that is not exactly well formed: %q", data)
		}
		res, err := result(rep, "cc")
		if err != nil {
			if res != nil || KindOf(err) != KindRemote {
				t.Fatalf("result: %+v, %v", res, err)
			}
			return
		}
		if (res.ExitCode == 0) != (len(res.Object) > 0) {
			t.Fatalf("exit %d with %d object bytes", res.ExitCode, len(res.Object))
		}
	})
}
