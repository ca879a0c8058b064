package sandbox

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
)

// Capability is what jobs on this machine get, found by running the helper
// once the way a job runs it.
type Capability struct {
	// Status is what the probe helper found enforced, checked; zero when
	// Err is set.
	Status
	// KernelABI is the Landlock ABI the kernel reports (0: none), which may
	// be newer than what go-landlock uses (Status.ABI).
	KernelABI int
	// Err says why the helper could not run or stopped: jobs will fail too.
	Err error
}

// Enforced says whether compilers are confined to the allowed directories.
func (c Capability) Enforced() bool { return c.Err == nil && c.FS }

// Summary is one line to log at start and show in `dcc status --explain`:
// a short description when the sandbox holds, a loud warning when it does
// not.
func (c Capability) Summary() string {
	if c.Err != nil {
		return fmt.Sprintf("NO SANDBOX: the sandbox helper failed (%v); jobs will fail", c.Err)
	}
	return c.Status.String()
}

// Probe runs the helper (as jobs will: "" is this executable) with a probe
// spec (everything a job gets, without a compiler) and returns what it
// enforced. Call it once at start: it takes a fork and an exec.
func Probe(helper string) Capability {
	var c Capability
	if v, err := ll.LandlockGetABIVersion(); err == nil {
		c.KernelABI = v
	}
	dir, err := os.MkdirTemp("", "dcc-sandbox-probe-")
	if err != nil {
		c.Err = err
		return c
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	defer cancel()
	cmd, err := Command(ctx, helper, &Spec{Dir: dir, DenySockets: true, ProbeOnly: true})
	if err != nil {
		c.Err = err
		return c
	}
	st, err := cmd.Start()
	if err != nil {
		c.Err = err
		return c
	}
	if err := cmd.Wait(); err != nil {
		c.Err = fmt.Errorf("probe helper: %w", err)
		return c
	}
	c.Status = st
	return c
}

// DefaultHelper is the helper a volunteer uses: the small dcc-sandbox
// binary beside the running executable if there is one (it starts several
// milliseconds sooner than the volunteer's own binary), else "" (the
// running executable, which serves as its own helper).
func DefaultHelper() string {
	self, err := os.Executable()
	if err != nil {
		return ""
	}
	p := filepath.Join(filepath.Dir(self), "dcc-sandbox")
	if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0 {
		return p
	}
	return ""
}
