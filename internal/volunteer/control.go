package volunteer

import (
	"fmt"
	"net"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/dcc-farm/dcc/pkg/wire"
)

// Control actions on the volunteer's local socket.
const (
	ControlPause  = "pause"
	ControlResume = "resume"
)

// serveControl answers `volunteer pause` and `volunteer resume` on a unix
// socket only this user (or root) can open.
func (v *Volunteer) serveControl(path string) error {
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("control socket %s: another volunteer answers on it (set --control)", path)
	}
	os.Remove(path) // a stale socket of a volunteer that is gone
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	os.Chmod(path, 0o600)
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		<-v.closing
		ln.Close()
		os.Remove(path)
	}()
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go v.control(conn)
		}
	}()
	return nil
}

func (v *Volunteer) control(conn net.Conn) {
	defer conn.Close()
	c := wire.NewConn(conn, wire.MaxControlFrame, 5*time.Second)
	req, err := wire.Expect[*wire.AdminRequest](c)
	if err != nil {
		return
	}
	switch req.Action {
	case ControlPause:
		reason := req.Reason
		if reason == "" {
			reason = "paused by the owner"
		}
		v.SetPaused(reason)
		v.log.Info("paused by hand", zap.String("reason", reason))
		c.Send(&wire.AdminReply{OK: true, Message: "paused: " + reason})
	case ControlResume:
		v.SetPaused("")
		v.log.Info("resumed by hand")
		c.Send(&wire.AdminReply{OK: true, Message: "resumed"})
	default:
		c.Send(&wire.AdminReply{Message: "unknown action " + req.Action})
	}
}

// Control sends a pause or resume to the volunteer listening on path.
func Control(path, action, reason string) (string, error) {
	conn, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return "", fmt.Errorf("no volunteer on %s: %w", path, err)
	}
	defer conn.Close()
	c := wire.NewConn(conn, wire.MaxControlFrame, 5*time.Second)
	if err := c.Send(&wire.AdminRequest{Action: action, Reason: reason}); err != nil {
		return "", err
	}
	rep, err := wire.Expect[*wire.AdminReply](c)
	if err != nil {
		return "", err
	}
	if !rep.OK {
		return "", fmt.Errorf("%s", rep.Message)
	}
	return rep.Message, nil
}
