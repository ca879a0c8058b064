package sandbox

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestPoolConfinesLikeAStartedHelper: a job on a helper the pool started
// ahead is confined exactly as one whose helper started for it (the
// secret stays unreadable, the job directory writable), its output goes
// where the job says, and the pool replaces helpers that are taken or
// that died while waiting.
func TestPoolConfinesLikeAStartedHelper(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("key"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := NewPool("", 2)
	defer p.Close()
	waitIdle(t, p, 2)

	// a helper that dies while it waits is not handed out
	p.mu.Lock()
	dead := p.idle[0]
	p.mu.Unlock()
	syscall.Kill(dead.Cmd.Process.Pid, syscall.SIGKILL)
	for alive(dead.Cmd.Process.Pid) {
		time.Sleep(5 * time.Millisecond)
	}

	for i := 0; i < 4; i++ { // more jobs than the pool holds: some start their own helper
		s := spec(t, probe(t), "read="+secret, "write=x.o")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		c, err := p.Command(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		c.SetOutput(&stdout, &stderr)
		st, err := c.Start()
		if err != nil {
			t.Fatalf("job %d: %v", i, err)
		}
		if err := c.Exec(); err != nil {
			t.Fatalf("job %d: %v", i, err)
		}
		if err := c.Wait(); err != nil {
			t.Fatalf("job %d: %v (%s)", i, err, stderr.String())
		}
		cancel()
		if st.FS {
			wantLine(t, stdout.String(), "read "+secret+": Permission denied")
		}
		wantLine(t, stdout.String(), "write x.o: ok")
	}
	waitIdle(t, p, 2)
}

// TestPoolJobCancelled: cancelling a job's context kills its pooled helper.
func TestPoolJobCancelled(t *testing.T) {
	p := NewPool("", 1)
	defer p.Close()
	waitIdle(t, p, 1)
	ctx, cancel := context.WithCancel(context.Background())
	c, err := p.Command(ctx, spec(t, "/bin/sleep", "60"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if err := c.Exec(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a killed job exited 0")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancelling the job did not kill it")
	}
}

func waitIdle(t *testing.T, p *Pool, n int) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		p.mu.Lock()
		k := len(p.idle)
		p.mu.Unlock()
		if k >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pool holds %d helpers, want %d", k, n)
		}
	}
}
