package broker

import (
	"crypto/ed25519"
	"fmt"
	"net"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/dcc-farm/dcc/internal/identity"
	"github.com/dcc-farm/dcc/pkg/wire"
)

// The broker is the farm's certificate authority (internal/identity). It
// creates its CA in the state directory on first start, or `broker enroll`
// does, whichever comes first; it serves every connection over mutual TLS
// with its own certificate; and it decides what a connection may do from
// the peer's certificate alone:
//
//	host credential  registers as a volunteer, under its own name only
//	user credential  leases slots (charged to its own name), asks status
//	admin credential what a user may, and drains, blocks, reloads, revokes
//
// A revoked credential is refused at the next connection, its open
// sessions are closed within a second of the revocation, and every
// volunteer is told to refuse it too.

// client is who holds a client session: the credential decides.
type client struct {
	user    string // charged for compiles: the credential's name (an admin may act for another)
	machine string // from the hello, for logs only
	admin   bool
	peer    identity.Peer
}

func clientOf(p identity.Peer, h *wire.Hello) client {
	c := client{user: p.Name, machine: h.Name, admin: p.ActsAs(identity.RoleAdmin), peer: p}
	if c.admin && h.User != "" && identity.CheckName(h.User) == nil {
		c.user = h.User
	}
	return c
}

func (c client) String() string { return c.peer.Role + " " + c.peer.Name + "@" + c.machine }

// openIdentities opens (or creates) the farm's CA in the state directory,
// issues the broker's own serving certificate, and loads the revocations.
func openIdentities(cfg Config) (*identity.CA, *identity.Identity, *identity.Revocations, error) {
	ca, err := identity.OpenCA(cfg.StateDir)
	if err != nil {
		return nil, nil, nil, err
	}
	dns, ips := []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	if h, err := os.Hostname(); err == nil {
		dns = append(dns, h)
	}
	names := append([]string{}, cfg.TLSNames...)
	for _, addr := range []string{cfg.Listen, cfg.HTTPS} {
		if host, _, err := net.SplitHostPort(addr); err == nil && host != "" {
			names = append(names, host)
		}
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			if !ip.IsUnspecified() {
				ips = append(ips, ip)
			}
		} else if n != "" {
			dns = append(dns, n)
		}
	}
	sid, err := ca.ServerIdentity(dns, ips)
	if err != nil {
		return nil, nil, nil, err
	}
	rev, err := identity.LoadRevocations(cfg.StateDir)
	if err != nil {
		return nil, nil, nil, err
	}
	return ca, sid, rev, nil
}

// refuse logs and counts a refused request and returns the one-line
// error for whoever made it.
func (b *Broker) refuse(reason string, p identity.Peer, format string, a ...any) *wire.Error {
	msg := fmt.Sprintf(format, a...)
	b.m.refused.WithLabelValues(reason).Inc()
	b.log.Warn("refused", zap.String("reason", reason), zap.String("credential", p.Role+" "+p.Name),
		zap.String("serial", serialText(p)), zap.String("message", msg))
	return &wire.Error{Code: wire.CodeAuth, Message: msg}
}

func serialText(p identity.Peer) string {
	if p.Serial == nil {
		return ""
	}
	return p.Serial.Text(16)
}

// admit decides whether a verified peer may open a session in the role
// its hello asks for.
func (b *Broker) admit(p identity.Peer, h *wire.Hello) (*wire.Welcome, *wire.Error) {
	if b.revoked.Revoked(p.Serial) {
		return nil, b.refuse("revoked", p, "your credential (%s %s) has been revoked by the farm's admin", p.Role, p.Name)
	}
	w := &wire.Welcome{Session: b.nextSess.Add(1), LeaseTTLMs: b.cfg.LeaseTTL.Milliseconds()}
	if b.cache != nil {
		w.Cache, w.CacheSalt = true, b.cache.salt
	}
	switch h.Role {
	case wire.RoleVolunteer:
		if p.Role != identity.RoleHost {
			return nil, b.refuse("not_host", p, "a %s credential (%s) cannot register as a volunteer: the host needs its own, from `broker enroll host NAME`", p.Role, p.Name)
		}
		if h.Name != "" && h.Name != p.Name {
			return nil, b.refuse("wrong_name", p, "this credential is for host %q, not %q", p.Name, h.Name)
		}
		b.mu.Lock()
		_, ok := b.farm.Hosts[p.Name]
		b.mu.Unlock()
		if !ok {
			return nil, b.refuse("not_in_farm", p, "host %q is not in the farm file", p.Name)
		}
		w.BrokerKey = b.sign.Public().(ed25519.PublicKey)
		w.Revoked = b.revoked.Serials()
	case wire.RoleClient, wire.RoleAdmin:
		if !p.ActsAs(identity.RoleUser) {
			return nil, b.refuse("not_user", p, "a %s credential (%s) cannot lease or ask the broker: use a user's", p.Role, p.Name)
		}
	default:
		return nil, b.refuse("bad_role", p, "unknown role %q", h.Role)
	}
	return w, nil
}

// reloadRevocations picks up `broker revoke` (it writes the state
// directory) within a second: sessions of revoked credentials are
// closed, and every volunteer learns the new list.
func (b *Broker) reloadRevocations() {
	changed, err := b.revoked.ReloadIfChanged()
	if err != nil {
		b.log.Error("revocations not reloaded; the previous list stays in force", zap.Error(err))
		return
	}
	if !changed {
		return
	}
	serials := b.revoked.Serials()
	b.log.Info("revocations reloaded", zap.Int("serials", len(serials)))
	b.closeMu.Lock()
	for s, p := range b.conns {
		if b.revoked.Revoked(p.Serial) {
			b.log.Warn("closing the session of a revoked credential", zap.String("credential", p.Role+" "+p.Name), zap.String("serial", serialText(p)))
			s.Close()
		}
	}
	b.closeMu.Unlock()
	b.mu.Lock()
	for _, vc := range b.vols {
		select {
		case vc.cmds <- &wire.Command{Kind: wire.CommandRevoked, Serials: serials}:
		default:
			vc.session.Close() // it reconnects, and its Welcome carries the list
		}
	}
	b.mu.Unlock()
}

// mismatchEvidence feeds a user's report that host returned an object
// differing from a local compile (DCC_VERIFY) to the host's health: each
// reporter counts once within the scheduler's window, and only several
// reporters put the host on probation, then block it
// (Scheduler.ReportMismatch): one user can neither block a host nor
// repeat itself into doing so. Caller holds mu.
func (b *Broker) mismatchEvidence(c client, host string, now time.Time) {
	if h, ok := b.sched.Host(host); ok && h.Distcc {
		// A stock distccd cannot prove which compiler it runs, and the
		// broker asked for the check: a differing object blocks it until
		// an admin unblocks it.
		t := true
		reason := fmt.Sprintf("object differed from a local compile (checked by %s): distccd's compiler is not the declared one", c.peer.Name)
		b.sched.SetAdmin(host, nil, &t, reason, now)
		if b.cache != nil {
			b.cache.purge(host, reason)
		}
		b.log.Error("distccd host blocked: its object differed from a local compile", zap.String("host", host), zap.String("reported_by", c.String()))
		b.dispatchLocked(now)
		return
	}
	n, counted := b.sched.ReportMismatch(host, c.peer.Name, now)
	if !counted {
		b.m.refused.WithLabelValues("mismatch_limited").Inc()
		return
	}
	if b.cache != nil && n >= b.sched.Config().MismatchProbation {
		b.cache.purge(host, "objects differed from local compiles")
	}
	b.log.Warn("verification mismatch reported: counted against the host's health", zap.String("host", host),
		zap.String("reported_by", c.String()), zap.Int("reporters", n))
	b.dispatchLocked(now)
}
