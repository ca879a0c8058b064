// Command grants benchmarks the broker's lease path: it starts a broker
// in-process (internal/broker.New + Start on loopback, with a temporary
// farm file and state directory, credentials from its CA), registers fake volunteers with many
// slots through the real protocol, opens N client sessions over yamux and
// has each loop lease request -> grant -> release; it reports grants per
// second and grant latency percentiles. The clients run in the same
// process, so on a small machine they share its CPUs with the broker.
//
//	go run ./bench/grants -sessions 1000 -duration 10s [-cpuprofile cpu.out]
package main

import (
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/dcc-farm/dcc/internal/broker"
	"github.com/dcc-farm/dcc/internal/identity"
	"github.com/dcc-farm/dcc/internal/logging"
	"github.com/dcc-farm/dcc/internal/testfarm"
	"github.com/dcc-farm/dcc/pkg/wire"
)

const fp = "x86_64-linux-gnu gcc version 12.2.0 (bench)"

func main() {
	sessions := flag.Int("sessions", 1000, "concurrent client sessions")
	duration := flag.Duration("duration", 10*time.Second, "measured time")
	warmup := flag.Duration("warmup", 2*time.Second, "unmeasured time first")
	hosts := flag.Int("hosts", 4, "fake volunteers")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the measured period")
	reuse := flag.Bool("reuse", true, "reuse a lease stream for the next lease, as the agent does")
	rate := flag.Float64("rate", 0, "open loop: total lease requests per second spread over the sessions (0: closed loop, each session as fast as it can)")
	flag.Parse()

	dir, err := os.MkdirTemp("", "dcc-grants-")
	check(err)
	defer os.RemoveAll(dir)
	slots := *sessions / *hosts * 2
	var farm string
	for i := 0; i < *hosts; i++ {
		farm += fmt.Sprintf("h%d %d 2 slots=%d\n", i, slots, slots)
	}
	farmFile := filepath.Join(dir, "farm")
	check(os.WriteFile(farmFile, []byte(farm), 0o644))
	cfg := broker.DefaultConfig()
	state := filepath.Join(dir, "state")
	cfg.Listen, cfg.HTTP, cfg.HTTPS, cfg.FarmFile, cfg.StateDir = "127.0.0.1:0", "", "", farmFile, state
	cfg.Saturated, cfg.Overload = 1e6, 1e6
	b, err := broker.New(cfg, logging.Nop())
	check(err)
	check(b.Start())
	defer b.Close()
	// Credentials from the broker's CA, as `broker enroll` writes them.
	creds := map[string]string{}
	dial := func(role, name string, hello wire.Hello) *yamux.Session {
		cred, ok := creds[role+"/"+name]
		if !ok {
			var err error
			cred, err = testfarm.Enroll(state, role, name, filepath.Join(dir, "id"))
			check(err)
			creds[role+"/"+name] = cred
		}
		s, err := testfarm.DialAs(b.Addr(), cred, identity.Expect(identity.RoleBroker, ""), hello)
		check(err)
		return s
	}

	// Fake volunteers: register, then report every second.
	for i := 0; i < *hosts; i++ {
		name := fmt.Sprintf("h%d", i)
		s := dial("host", name, wire.Hello{Role: wire.RoleVolunteer, Name: name})
		st, err := s.OpenStream()
		check(err)
		c := wire.NewConn(st, wire.MaxControlFrame, 10*time.Second)
		check(c.Send(&wire.Register{Name: name, Addr: "127.0.0.1:9", CPUs: slots, Slots: slots,
			Compilers: []wire.CompilerInfo{{Name: "gcc", Fingerprint: fp}}, Status: wire.HostStatus{Available: true}}))
		go func() {
			for range time.Tick(time.Second) {
				if c.Send(&wire.HostStatus{Available: true}) != nil {
					return
				}
			}
		}()
		go func() { // drain commands
			for {
				if _, err := c.RecvTimeout(0); err != nil {
					return
				}
			}
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for b.Status("").Slots < *hosts*slots && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Printf("broker up: %d hosts, %d slots; opening %d client sessions\n", *hosts, b.Status("").Slots, *sessions)

	clients := make([]*yamux.Session, *sessions)
	for i := range clients {
		clients[i] = dial("user", fmt.Sprintf("u%d", i%70), wire.Hello{Role: wire.RoleClient, Name: "bench"})
	}
	var measuring atomic.Bool
	var stop atomic.Bool
	var grants, errs atomic.Int64
	lat := make([][]time.Duration, *sessions)
	var wg sync.WaitGroup
	digest := sha256.Sum256([]byte("source"))
	for i, s := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var every time.Duration
			next := time.Now()
			if *rate > 0 {
				every = time.Duration(float64(*sessions) / *rate * float64(time.Second))
				next = next.Add(time.Duration(i) * every / time.Duration(*sessions))
			}
			// Like the agent, keep the lease stream for the next lease
			// after a clean release (-reuse=false: a stream per lease).
			var st *yamux.Stream
			var c *wire.Conn
			for !stop.Load() {
				if every > 0 {
					time.Sleep(time.Until(next))
					next = next.Add(every)
				}
				if st == nil {
					var err error
					if st, err = s.OpenStream(); err != nil {
						errs.Add(1)
						return
					}
					c = wire.NewConn(st, wire.MaxControlFrame, 30*time.Second)
				}
				t0 := time.Now()
				if err := c.Send(&wire.LeaseRequest{Fingerprint: fp, Lang: "c", SourceBytes: 1000, Digest: digest[:], MaxWaitMs: 60000}); err != nil {
					errs.Add(1)
					st.Close()
					st = nil
					continue
				}
				var g *wire.LeaseGrant
				for g == nil {
					m, err := c.Recv()
					if err != nil {
						break
					}
					switch m := m.(type) {
					case *wire.LeaseGrant:
						g = m
					case *wire.LeaseQueued:
					default:
						err = fmt.Errorf("%T", m)
					}
					if err != nil {
						break
					}
				}
				if g == nil {
					errs.Add(1)
					st.Close()
					st = nil
					continue
				}
				d := time.Since(t0)
				if measuring.Load() {
					grants.Add(1)
					lat[i] = append(lat[i], d)
				}
				if c.Send(&wire.LeaseRelease{LeaseID: g.LeaseID, Outcome: wire.OutcomeOK}) != nil || !*reuse {
					st.Close()
					st = nil
				}
			}
			if st != nil {
				st.Close()
			}
		}()
	}
	time.Sleep(*warmup)
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		check(err)
		check(pprof.StartCPUProfile(f))
		defer pprof.StopCPUProfile()
	}
	measuring.Store(true)
	start := time.Now()
	time.Sleep(*duration)
	measuring.Store(false)
	elapsed := time.Since(start)
	runtime.ReadMemStats(&ms1)
	stop.Store(true)
	wg.Wait()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	p := func(q float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return all[int(q*float64(len(all)-1))]
	}
	n := grants.Load()
	mode := "closed loop"
	if *rate > 0 {
		mode = fmt.Sprintf("open loop at %.0f requests/s", *rate)
	}
	fmt.Printf("sessions %d (%s), GOMAXPROCS %d, measured %s\n", *sessions, mode, runtime.GOMAXPROCS(0), elapsed.Round(time.Millisecond))
	fmt.Printf("grants %d (%.0f/s), errors %d\n", n, float64(n)/elapsed.Seconds(), errs.Load())
	fmt.Printf("grant latency (request sent -> grant received, client side): p50 %s p90 %s p99 %s p99.9 %s max %s\n",
		p(0.5), p(0.9), p(0.99), p(0.999), p(1))
	fmt.Printf("allocations per grant (whole process, clients included): %.0f, %.0f bytes\n",
		float64(ms1.Mallocs-ms0.Mallocs)/float64(n), float64(ms1.TotalAlloc-ms0.TotalAlloc)/float64(n))
	if l := b.Status("").Leases; l != 0 {
		time.Sleep(time.Second)
		fmt.Printf("leases left after the run: %d\n", b.Status("").Leases)
	}
	for _, s := range clients {
		s.Close()
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "grants:", err)
		os.Exit(1)
	}
}
