package wire

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

func TestExpect(t *testing.T) {
	tests := []struct {
		name    string
		sent    Message
		wantErr func(error) bool
	}{
		{"match", &Welcome{Session: 4}, func(err error) bool { return err == nil }},
		{"peer error", &Error{Code: CodeDenied, Message: "blocked"}, func(err error) bool {
			var e *Error
			return errors.As(err, &e) && e.Code == CodeDenied && e.Message == "blocked"
		}},
		{"other type", &LeaseDenied{Reason: "x"}, func(err error) bool { return errors.Is(err, ErrUnexpected) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteFrame(&buf, tt.sent); err != nil {
				t.Fatal(err)
			}
			w, err := Expect[*Welcome](NewConn(&buf, MaxControlFrame, 0))
			if !tt.wantErr(err) {
				t.Fatalf("Expect = %v, %v", w, err)
			}
			if err == nil && w.Session != 4 {
				t.Errorf("got %#v", w)
			}
			if err != nil && w != nil {
				t.Errorf("value %#v returned with error", w)
			}
		})
	}
	t.Run("Expect *Error itself", func(t *testing.T) {
		var buf bytes.Buffer
		_ = WriteFrame(&buf, &Error{Code: 1, Message: "m"})
		e, err := Expect[*Error](NewConn(&buf, MaxControlFrame, 0))
		if err != nil || e.Code != 1 {
			t.Errorf("Expect[*Error] = %v, %v", e, err)
		}
	})
	t.Run("Recv returns Error as message", func(t *testing.T) {
		var buf bytes.Buffer
		_ = WriteFrame(&buf, &Error{Code: 1, Message: "m"})
		m, err := NewConn(&buf, MaxControlFrame, 0).Recv()
		if _, ok := m.(*Error); !ok || err != nil {
			t.Errorf("Recv = %#v, %v", m, err)
		}
	})
	t.Run("frame cap applies", func(t *testing.T) {
		var buf bytes.Buffer
		_ = WriteFrame(&buf, &StatusReply{JSON: make([]byte, 200)})
		_, err := Expect[*StatusReply](NewConn(&buf, 100, 0))
		if !errors.Is(err, ErrFrameTooLarge) {
			t.Errorf("err = %v, want ErrFrameTooLarge", err)
		}
	})
}

func TestConnDeadlines(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			a, b := tr.pair(t)
			defer a.Close()
			defer b.Close()
			ca, cb := NewConn(a, MaxControlFrame, 0), NewConn(b, MaxControlFrame, 0)

			start := time.Now()
			m, err := ca.RecvTimeout(50 * time.Millisecond)
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("RecvTimeout on a silent peer = %v, %v; want a timeout", m, err)
			}
			if d := time.Since(start); d < 40*time.Millisecond || d > 2*time.Second {
				t.Errorf("timed out after %v, want about 50ms", d)
			}

			// RecvTimeout(0) clears the earlier deadline: a message sent
			// after it has passed still arrives.
			go func() {
				time.Sleep(100 * time.Millisecond)
				_ = cb.Send(&LeaseRenew{LeaseID: 9})
			}()
			m, err = ca.RecvTimeout(0)
			if err != nil {
				t.Fatalf("RecvTimeout(0) after a timeout: %v", err)
			}
			if r, ok := m.(*LeaseRenew); !ok || r.LeaseID != 9 {
				t.Errorf("got %#v", m)
			}

			// ReadTimeout applies to Recv.
			ca.ReadTimeout = 30 * time.Millisecond
			if _, err := ca.Recv(); !errors.As(err, &ne) || !ne.Timeout() {
				t.Errorf("Recv with ReadTimeout = %v, want a timeout", err)
			}
		})
	}
}

// A Send to a peer that does not read fails after WriteTimeout (net.Pipe
// has no buffer, so the first write blocks).
func TestConnWriteTimeout(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	c := NewConn(a, MaxControlFrame, 50*time.Millisecond)
	start := time.Now()
	err := c.Send(&LeaseRenew{LeaseID: 1})
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Send = %v, want a timeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Send returned after %v", d)
	}
}

func TestConnClose(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	if err := NewConn(a, MaxControlFrame, 0).Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write([]byte{1}); !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("write after Close = %v", err)
	}
	if err := NewConn(&bytes.Buffer{}, MaxControlFrame, 0).Close(); err != nil {
		t.Errorf("Close of a non-closer = %v", err)
	}
}
