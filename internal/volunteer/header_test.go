package volunteer_test

import (
	"testing"
	"time"

	"github.com/dcc-farm/dcc/internal/testfarm"
	"github.com/dcc-farm/dcc/pkg/wire"
)

// TestRefusesFromTheHeader: a job whose header carries a bad token is
// refused before its source is read. The client announces 60 MiB of
// source and never sends it: the refusal must come anyway, from the small
// header frame alone, so a volunteer never buffers a large source for a
// job it will not run.
func TestRefusesFromTheHeader(t *testing.T) {
	p := testfarm.StartInProcess(t, "v1 16 2 slots=2\n", false)
	defer p.Broker.Close()
	v := p.StartVolunteer(t, "v1", 2, nil)
	defer v.Close()
	s := p.DialVolunteer(t, v.Addr(), "v1", "alice")
	defer s.Close()
	st, err := s.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	c := wire.NewConn(st, wire.MaxJobFrame, 5*time.Second)
	if err := c.Send(&wire.JobRequest{Token: []byte("DCT1 forged"), Compiler: "gcc", Fingerprint: v.Compilers()[0].Fingerprint,
		Ext: ".i", Kind: ".o", Args: []string{"-O2"}, SourceName: "x.i", SourceBytes: 60 << 20, Digest: make([]byte, 32)}); err != nil {
		t.Fatal(err)
	}
	r, err := wire.Expect[*wire.JobResult](c)
	if err != nil {
		t.Fatalf("no answer to the header alone: %v", err)
	}
	if r.Code != wire.RejectToken || r.Rejected == "" {
		t.Fatalf("got %+v, want a token refusal", r)
	}
	// A header that announces more than a frame can carry is refused too.
	st2, _ := s.OpenStream()
	c2 := wire.NewConn(st2, wire.MaxJobFrame, 5*time.Second)
	c2.Send(&wire.JobRequest{Token: []byte("x"), SourceBytes: 1 << 40})
	if r, err := wire.Expect[*wire.JobResult](c2); err != nil || r.Code != wire.RejectBadRequest {
		t.Fatalf("oversized announcement: %v %+v", err, r)
	}
}
