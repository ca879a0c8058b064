package broker

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/dcc-farm/dcc/internal/compiler"
	"github.com/dcc-farm/dcc/internal/distcc"
	"github.com/dcc-farm/dcc/internal/farm"
	"github.com/dcc-farm/dcc/internal/scheduler"
)

// Stock distccd hosts (protocol=distcc in the farm file) take part in the
// farm like volunteers: tiers, fair share, slots, drain and block, health.
// Nothing runs on them but distccd, so the broker does a volunteer's
// part: it declares the host connected while a TCP connect to its address
// succeeds (probed every distccProbeEvery, without running a job), offers
// the compiler the farm file declares for it, and asks clients to check
// its first objects and one in distccVerifyEvery after against a local
// compile. distccd authenticates nothing: these hosts are for trusted
// networks (docs/operations.md).

const (
	distccProbeEvery   = 2 * time.Second
	distccProbeTimeout = 2 * time.Second
	// distccVerifyFirst jobs on a distccd host, and one in
	// distccVerifyEvery after them, are also compiled by the client and
	// compared (a distccd cannot prove which compiler it runs).
	distccVerifyFirst = 3
	distccVerifyEvery = 20
)

// distccHost is what the broker knows of a distccd host.
type distccHost struct {
	addr        string
	fingerprint string // the compiler it offers
	target      string
	err         string // why its compiler could not be resolved, if so
	probeFail   string // the last probe's error, "" while it answers
}

// compilerNames caches the fingerprints of compilers named in the farm
// file (compiler=gcc), resolved on the broker's own machine.
var compilerNames = struct {
	sync.Mutex
	m map[string]compiler.Identity
}{m: map[string]compiler.Identity{}}

// resolveCompiler turns a farm file's compiler= into a fingerprint: a
// fingerprint as is ("TARGET VERSION LINE", it has a space), a name (gcc,
// clang-14, ...) as that compiler on the broker's machine identifies.
func resolveCompiler(c string) (fingerprint, target string, err error) {
	if target, _, ok := strings.Cut(c, " "); ok {
		return c, target, nil
	}
	compilerNames.Lock()
	id, ok := compilerNames.m[c]
	compilerNames.Unlock()
	if !ok {
		path, err := exec.LookPath(c)
		if err != nil {
			return "", "", fmt.Errorf("compiler=%s: no such compiler on the broker's machine to take its fingerprint from; give the fingerprint instead (dcc status lists them)", c)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if id, err = compiler.Probe(ctx, path); err != nil {
			return "", "", fmt.Errorf("compiler=%s: %w", c, err)
		}
		compilerNames.Lock()
		compilerNames.m[c] = id
		compilerNames.Unlock()
	}
	return id.Fingerprint, id.Target, nil
}

// applyDistcc records the farm file's distccd hosts. Caller holds mu.
func (b *Broker) applyDistcc(f *farm.Farm) {
	next := make(map[string]*distccHost)
	for _, name := range f.Names() {
		h := f.Hosts[name]
		if !h.Distcc() {
			continue
		}
		d := &distccHost{addr: h.Addr}
		if old := b.distcc[name]; old != nil && old.addr == h.Addr {
			d.probeFail = old.probeFail
		}
		fp, target, err := resolveCompiler(h.Compiler)
		if err != nil {
			d.err = err.Error()
			b.log.Error("distccd host offers no usable compiler", zap.String("host", name), zap.Error(err))
		}
		d.fingerprint, d.target = fp, target
		next[name] = d
	}
	b.distcc = next
}

// probeDistcc probes every distccd host until the broker closes.
func (b *Broker) probeDistcc() {
	t := time.NewTicker(distccProbeEvery)
	defer t.Stop()
	for {
		b.probeDistccOnce()
		select {
		case <-b.closing:
			return
		case <-t.C:
		}
	}
}

func (b *Broker) probeDistccOnce() {
	b.mu.Lock()
	type probe struct{ name, addr string }
	var todo []probe
	for name, d := range b.distcc {
		todo = append(todo, probe{name, d.addr})
	}
	b.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range todo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), distccProbeTimeout)
			err := distcc.Probe(ctx, p.addr)
			cancel()
			b.distccProbed(p.name, p.addr, err)
		}()
	}
	wg.Wait()
}

// distccProbed applies a probe's result: a host that answers is connected
// (offering its declared compiler), one that does not is gone and its
// leases are reclaimed.
func (b *Broker) distccProbed(name, addr string, err error) {
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	d := b.distcc[name]
	fh, inFarm := b.farm.Hosts[name]
	if d == nil || d.addr != addr || !inFarm {
		return // the farm file changed meanwhile
	}
	h, _ := b.sched.Host(name)
	connected := h != nil && h.Connected
	switch {
	case err == nil && !connected && d.err == "":
		slots := fh.Slots
		if slots == 0 {
			slots = fh.CPUs
		}
		b.sched.Connect(name, scheduler.Registration{Addr: addr, CPUs: fh.CPUs, Slots: slots,
			Compilers: map[string]string{d.fingerprint: d.target}}, now)
		b.applyHostStatusLocked(name, now)
		d.probeFail = ""
		b.log.Info("distccd host answers", zap.String("host", name), zap.String("addr", addr), zap.String("compiler", d.fingerprint))
		b.dispatchLocked(now)
	case err != nil && connected:
		d.probeFail = err.Error()
		b.sched.ReportOutcome(name, true, now)
		for _, l := range b.sched.Disconnect(name, now) {
			b.reclaimed(l, "host_gone", "distccd does not answer: "+err.Error(), now)
		}
		b.log.Warn("distccd host does not answer", zap.String("host", name), zap.String("addr", addr), zap.Error(err))
		b.dispatchLocked(now)
	case err != nil:
		d.probeFail = err.Error()
	}
}

// verifyDistcc decides whether the client must check this job's object
// against a local compile: the first jobs on a distccd host, then one in
// distccVerifyEvery. Caller holds mu.
func (b *Broker) verifyDistcc(host string) bool {
	h, ok := b.sched.Host(host)
	if !ok || !h.Distcc {
		return false
	}
	return h.JobsDone < distccVerifyFirst || rand.IntN(distccVerifyEvery) == 0
}
