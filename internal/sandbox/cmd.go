package sandbox

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// ErrSetup is wrapped by every error that stopped a job before its
// compiler ran: a farm failure, never the user's.
var ErrSetup = errors.New("sandbox")

// handshakeTimeout bounds handing over the spec and reading the report.
// Setting up takes milliseconds; this only catches a helper that is not
// one (a binary without the hook would ignore its pipes).
const handshakeTimeout = 30 * time.Second

// Cmd is one run of the helper. The caller may set Cmd.Stdout and
// Cmd.Stderr (the compiler's), then calls Start, then Cmd.Wait.
type Cmd struct {
	// Cmd runs the helper, which becomes the compiler. It leads a new
	// process group, which is killed when the context is done, so that
	// nothing the compiler started outlives the job.
	Cmd  *exec.Cmd
	spec []byte
}

// Command prepares to run spec through helper ("" = this executable).
func Command(ctx context.Context, helper string, spec *Spec) (*Cmd, error) {
	if helper == "" {
		var err error
		if helper, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("%w: finding the helper: %v", ErrSetup, err)
		}
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSetup, err)
	}
	if len(b) > maxSpec {
		return nil, fmt.Errorf("%w: spec over %d bytes", ErrSetup, maxSpec)
	}
	cmd := exec.CommandContext(ctx, helper, HelperArg)
	cmd.Env = []string{} // the compiler's environment is in the spec
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	return &Cmd{Cmd: cmd, spec: b}, nil
}

// Start starts the helper, hands it the spec and reads its report. It
// returns once the compiler runs in the sandbox, with what is enforced; or
// with an error wrapping ErrSetup, after killing and reaping the helper
// (the caller must not call Wait then).
func (c *Cmd) Start() (Status, error) {
	specR, specW, err := os.Pipe()
	if err != nil {
		return Status{}, fmt.Errorf("%w: %v", ErrSetup, err)
	}
	repR, repW, err := os.Pipe()
	if err != nil {
		specR.Close()
		specW.Close()
		return Status{}, fmt.Errorf("%w: %v", ErrSetup, err)
	}
	defer specW.Close()
	defer repR.Close()
	c.Cmd.ExtraFiles = []*os.File{specR, repW} // fds 3 and 4
	err = c.Cmd.Start()
	specR.Close()
	repW.Close() // else the report pipe never reaches end of file
	if err != nil {
		return Status{}, fmt.Errorf("%w: start helper: %v", ErrSetup, err)
	}
	deadline := time.Now().Add(handshakeTimeout)
	specW.SetWriteDeadline(deadline)
	repR.SetReadDeadline(deadline)
	_, werr := specW.Write(c.spec)
	specW.Close()
	st, err := readReport(repR)
	if err == nil && werr != nil {
		err = fmt.Errorf("%w: writing the spec: %v", ErrSetup, werr)
	}
	if err != nil {
		c.Cmd.Cancel()
		c.Cmd.Wait()
		return Status{}, err
	}
	return st, nil
}

// readReport reads the helper's status line, then waits for end of file,
// which comes when the exec of the compiler closes the pipe; a second line
// says why the exec failed.
func readReport(r io.Reader) (Status, error) {
	br := bufio.NewReader(io.LimitReader(r, maxReport))
	first, err := br.ReadBytes('\n')
	if err != nil {
		if err == io.EOF {
			return Status{}, fmt.Errorf("%w: helper exited before reporting", ErrSetup)
		}
		return Status{}, fmt.Errorf("%w: reading the report: %v", ErrSetup, err)
	}
	rep, err := parseReport(first)
	if err != nil {
		return Status{}, err
	}
	if rep.Status == nil {
		return Status{}, fmt.Errorf("%w: report without a status", ErrSetup)
	}
	rest, err := io.ReadAll(br)
	if err != nil {
		return Status{}, fmt.Errorf("%w: waiting for the compiler to start: %v", ErrSetup, err)
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		if _, err := parseReport(rest); err != nil {
			return Status{}, err
		}
		return Status{}, fmt.Errorf("%w: helper reported twice", ErrSetup)
	}
	return *rep.Status, nil
}

// parseReport decodes one report line; a reported error is returned as one.
func parseReport(line []byte) (report, error) {
	var rep report
	if err := json.Unmarshal(line, &rep); err != nil {
		return rep, fmt.Errorf("%w: bad report %.80q: %v", ErrSetup, line, err)
	}
	if rep.Error != "" {
		return rep, fmt.Errorf("%w: %s", ErrSetup, rep.Error)
	}
	return rep, nil
}
