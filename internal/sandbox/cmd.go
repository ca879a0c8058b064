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
// Cmd.Stderr (the compiler's), then calls Start, Exec and Wait.
type Cmd struct {
	// Cmd runs the helper, which becomes the compiler. It leads a new
	// process group, which is killed when the context is done, so that
	// nothing the compiler started outlives the job.
	Cmd    *exec.Cmd
	spec   []byte
	specW  *os.File
	report *os.File
	rest   *bufio.Reader // the report after the status line

	// A helper from a Pool is running already: its output goes where
	// SetOutput says, and unbind ends its tie to the job's context.
	out, errOut *switchWriter
	unbind      func() bool
}

// SetOutput sends the compiler's stdout and stderr to stdout and stderr.
// Call it before Start.
func (c *Cmd) SetOutput(stdout, stderr io.Writer) {
	if c.out != nil {
		c.out.set(stdout)
		c.errOut.set(stderr)
		return
	}
	c.Cmd.Stdout, c.Cmd.Stderr = stdout, stderr
}

// Command prepares to run spec through helper ("" = this executable).
func Command(ctx context.Context, helper string, spec *Spec) (*Cmd, error) {
	if helper == "" {
		var err error
		if helper, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("%w: finding the helper: %v", ErrSetup, err)
		}
	}
	b, err := encodeSpec(spec)
	if err != nil {
		return nil, err
	}
	cmd := helperProcess(exec.CommandContext(ctx, helper, HelperArg))
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	return &Cmd{Cmd: cmd, spec: b}, nil
}

// encodeSpec is spec as the one line the helper reads.
func encodeSpec(spec *Spec) ([]byte, error) {
	b, err := json.Marshal(spec) // one line: JSON escapes newlines
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSetup, err)
	}
	if len(b) > maxSpec {
		return nil, fmt.Errorf("%w: spec over %d bytes", ErrSetup, maxSpec)
	}
	return append(b, '\n'), nil
}

// helperProcess sets up what every helper gets, whether started for a job
// or ahead of one (Pool): an empty environment (the compiler's is in the
// spec), a process group of its own, and a bound on waiting for its
// output after it exits.
func helperProcess(cmd *exec.Cmd) *exec.Cmd {
	cmd.Env = []string{}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// Start starts the helper, hands it the spec and reads its status line. It
// returns once the helper is confined, niced and limited and waits for
// Exec, with what is enforced: the caller may record and renice the
// process group (Cmd.Process.Pid) before the compiler runs. On error
// (wrapping ErrSetup) the helper has been killed and reaped, and the
// caller must not call Exec or Wait.
func (c *Cmd) Start() (Status, error) {
	if c.out == nil { // not from a pool: start it now
		if err := c.launch(); err != nil {
			return Status{}, err
		}
	}
	deadline := time.Now().Add(handshakeTimeout)
	c.specW.SetWriteDeadline(deadline)
	c.report.SetReadDeadline(deadline)
	_, werr := c.specW.Write(c.spec)
	c.rest = bufio.NewReader(io.LimitReader(c.report, maxReport))
	st, err := readStatus(c.rest)
	if err == nil && werr != nil {
		err = fmt.Errorf("%w: writing the spec: %v", ErrSetup, werr)
	}
	if err != nil {
		c.abort()
		return Status{}, err
	}
	return st, nil
}

// launch starts the helper with its two pipes.
func (c *Cmd) launch() error {
	specR, specW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSetup, err)
	}
	repR, repW, err := os.Pipe()
	if err != nil {
		specR.Close()
		specW.Close()
		return fmt.Errorf("%w: %v", ErrSetup, err)
	}
	c.specW, c.report = specW, repR
	c.Cmd.ExtraFiles = []*os.File{specR, repW} // fds 3 and 4
	err = c.Cmd.Start()
	specR.Close()
	repW.Close() // else the report pipe never reaches end of file
	if err != nil {
		specW.Close()
		repR.Close()
		return fmt.Errorf("%w: start helper: %v", ErrSetup, err)
	}
	return nil
}

// Exec lets the helper exec the compiler and returns once it has: an exec
// that failed is an error wrapping ErrSetup, after which the helper has
// been reaped and the caller must not call Wait.
func (c *Cmd) Exec() error {
	_, err := c.specW.Write([]byte(goWord))
	c.specW.Close()
	if err != nil {
		err = fmt.Errorf("%w: starting the compiler: %v", ErrSetup, err)
	} else {
		// End of file comes when the exec closes the pipe (close-on-exec);
		// a line says why the exec failed.
		var rest []byte
		if rest, err = io.ReadAll(c.rest); err != nil {
			err = fmt.Errorf("%w: waiting for the compiler to start: %v", ErrSetup, err)
		} else if len(bytes.TrimSpace(rest)) > 0 {
			if _, err = parseReport(rest); err == nil {
				err = fmt.Errorf("%w: helper reported twice", ErrSetup)
			}
		}
	}
	if err != nil {
		c.abort()
		return err
	}
	return nil
}

// Wait waits for the compiler (or the helper, without Exec) to exit, like
// exec.Cmd.Wait: a compiler's failure is an *exec.ExitError.
func (c *Cmd) Wait() error {
	c.specW.Close() // a helper still waiting for Exec gives up
	c.report.Close()
	err := c.Cmd.Wait()
	if c.unbind != nil {
		c.unbind()
	}
	return err
}

func (c *Cmd) abort() {
	c.specW.Close()
	c.report.Close()
	syscall.Kill(-c.Cmd.Process.Pid, syscall.SIGKILL) // its process group: the helper leads one
	c.Cmd.Wait()
	if c.unbind != nil {
		c.unbind()
	}
}

// readStatus reads the helper's status line.
func readStatus(br *bufio.Reader) (Status, error) {
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
