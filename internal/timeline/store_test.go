package timeline

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMain lets a test run this binary as a reader in another process.
func TestMain(m *testing.M) {
	if dir := os.Getenv("DCC_TIMELINE_READER"); dir != "" {
		os.Exit(readerProcess(dir))
	}
	os.Exit(m.Run())
}

func mustOpen(t *testing.T, dir string, o Options) *Store {
	t.Helper()
	s, err := OpenOptions(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func seqJob(i int) Job {
	j := remoteJob(fmt.Sprintf("f%05d.c", i), "sun1", i%4, float64(i))
	j.BytesOut, j.BytesIn = int64(1000+i), int64(i)
	return j
}

func TestStoreRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "builds")
	s := mustOpen(t, dir, Options{})
	b := synthBuild(60, 8, 1)
	meta := BuildMeta{Command: b.Command, Dir: b.Dir, Start: b.Start}
	for _, j := range b.Jobs {
		if err := s.Append(b.ID, meta, j); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Load(b.ID)
	if err != nil {
		t.Fatal(err)
	}
	// JSON holds only UTF-8: a name with invalid bytes comes back with
	// U+FFFD in their place, and otherwise the build is unchanged.
	var want Build
	json.Unmarshal([]byte(jsonOf(t, b)), &want)
	if got.Jobs[4].Source != "src/bad-utf8-\uFFFD\uFFFD.c" {
		t.Errorf("invalid UTF-8 stored as %q", got.Jobs[4].Source)
	}
	if g, w := jsonOf(t, got), jsonOf(t, want); g != w {
		i := 0
		for i < len(g) && i < len(w) && g[i] == w[i] {
			i++
		}
		t.Fatalf("round trip differs at byte %d:\n got …%.200s\nwant …%.200s", i, g[max(i-100, 0):], w[max(i-100, 0):])
	}

	// Private: the directory 0700 (even if it existed wider), files 0600.
	st, _ := os.Stat(dir)
	if st.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v", st.Mode().Perm())
	}
	fst, _ := os.Stat(filepath.Join(dir, b.ID+".jsonl"))
	if fst.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v", fst.Mode().Perm())
	}
	os.Chmod(dir, 0o755)
	mustOpen(t, dir, Options{})
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("reopened dir mode %v", st.Mode().Perm())
	}

	// The format: a header line, then one {"job":…} line per job.
	raw, _ := os.ReadFile(filepath.Join(dir, b.ID+".jsonl"))
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	if len(lines) != 1+len(b.Jobs) || !strings.HasPrefix(lines[0], `{"format":"dcc-timeline/1","id":"synth-1",`) ||
		!strings.HasPrefix(lines[1], `{"job":{"source":`) {
		t.Fatalf("file layout: %d lines, first %.80s, second %.80s", len(lines), lines[0], lines[1])
	}
}

func TestStoreRejects(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Options{})
	for _, id := range []string{"", ".hidden", "a/b", "../x", "a b", strings.Repeat("x", 129), "é"} {
		if err := s.Append(id, BuildMeta{}, seqJob(0)); !errors.Is(err, ErrBadID) {
			t.Errorf("Append(%q) = %v, want ErrBadID", id, err)
		}
		if _, err := s.Load(id); !errors.Is(err, ErrBadID) {
			t.Errorf("Load(%q) = %v, want ErrBadID", id, err)
		}
	}
	bad := seqJob(0)
	bad.Where = "nowhere"
	if err := s.Append("b1", BuildMeta{}, bad); !errors.Is(err, ErrInvalidJob) {
		t.Fatalf("invalid job: %v", err)
	}
	if _, err := s.Load("b1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an invalid first job created the build: %v", err)
	}
	if _, err := s.Last(); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Last on an empty store: %v", err)
	}
}

func TestStoreListPruneLast(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{Keep: 3})
	// Five builds; the third starts latest, so "newest" is by start, not
	// by creation.
	starts := []int{0, 10, 50, 20, 30}
	for k, st := range starts {
		id := fmt.Sprintf("build-%d", k)
		meta := BuildMeta{Command: []string{"make", "-j4"}, Dir: "/src", Start: at(time.Duration(st) * time.Second)}
		for i := 0; i <= k; i++ {
			j := seqJob(i)
			for p := range j.Phases {
				j.Phases[p].Start = j.Phases[p].Start.Add(time.Duration(st) * time.Second)
				j.Phases[p].End = j.Phases[p].End.Add(time.Duration(st) * time.Second)
			}
			if k == 4 && i == 0 {
				j.Where, j.Host, j.Slot = WhereLocal, "", -1
				j.Phases = j.Phases[:1]
				j.Phases[0].Name = PhaseLocalCompile
			}
			if err := s.Append(id, meta, j); err != nil {
				t.Fatal(err)
			}
		}
	}
	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, sm := range list {
		ids = append(ids, sm.ID)
	}
	// build-0 and build-1 are the oldest by start and were pruned.
	if strings.Join(ids, ",") != "build-2,build-4,build-3" {
		t.Fatalf("List = %v", ids)
	}
	if list[1].Files != 5 || list[1].Remote != 4 || list[1].Local != 1 || list[0].Files != 3 {
		t.Fatalf("summaries %+v", list)
	}
	if j2 := seqJob(2); list[0].Wall != j2.End().Sub(at(0)) {
		t.Fatalf("wall %v", list[0].Wall)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 3 {
		t.Fatalf("%d files after pruning to 3", len(ents))
	}
	last, err := s.Last()
	if err != nil || last.ID != "build-2" || len(last.Jobs) != 3 {
		t.Fatalf("Last = %v, %v", last, err)
	}
	if _, err := s.Load("build-0"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("pruned build loads: %v", err)
	}
}

func TestStoreBoundsJobs(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{MaxJobs: 5})
	for i := 0; i < 12; i++ {
		if err := s.Append("b", BuildMeta{}, seqJob(i)); err != nil {
			t.Fatal(err)
		}
	}
	b, err := s.Load("b")
	if err != nil {
		t.Fatal(err)
	}
	// 7 dropped; markers were written at the 1st, 2nd and 4th drop.
	if len(b.Jobs) != 5 || b.Dropped != 4 {
		t.Fatalf("before close: %d jobs, %d dropped", len(b.Jobs), b.Dropped)
	}
	s.Close()
	b, _ = s.Load("b")
	if len(b.Jobs) != 5 || b.Dropped != 7 || b.Jobs[4].Source != "f00004.c" {
		t.Fatalf("after close: %d jobs, %d dropped", len(b.Jobs), b.Dropped)
	}
	if sm := Summarize(b); sm.Dropped != 7 || sm.Files != 5 {
		t.Fatalf("summary %+v", sm)
	}

	// A writer that starts again (the agent exited idle mid-build) counts
	// what the file holds and keeps the bounds.
	s2 := mustOpen(t, dir, Options{MaxJobs: 5})
	for i := 12; i < 15; i++ {
		if err := s2.Append("b", BuildMeta{}, seqJob(i)); err != nil {
			t.Fatal(err)
		}
	}
	s2.Close()
	b, _ = s2.Load("b")
	if len(b.Jobs) != 5 || b.Dropped != 10 {
		t.Fatalf("resumed: %d jobs, %d dropped", len(b.Jobs), b.Dropped)
	}
}

func TestStoreBoundsBytes(t *testing.T) {
	dir := t.TempDir()
	line := len(jsonOf(t, record{Job: ptr(seqJob(0))})) + 1
	s := mustOpen(t, dir, Options{MaxBytes: int64(3*line + line/2)})
	for i := 0; i < 6; i++ {
		if err := s.Append("b", BuildMeta{}, seqJob(i)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	b, _ := s.Load("b")
	if len(b.Jobs) != 3 || b.Dropped != 3 {
		t.Fatalf("%d jobs, %d dropped", len(b.Jobs), b.Dropped)
	}
	// A job too large for one record is dropped, whatever the bounds.
	big := seqJob(9)
	big.LocalReason = strings.Repeat("x", maxLine)
	s2 := mustOpen(t, t.TempDir(), Options{})
	if err := s2.Append("c", BuildMeta{}, seqJob(0)); err != nil {
		t.Fatal(err)
	}
	if err := s2.Append("c", BuildMeta{}, big); err != nil {
		t.Fatal(err)
	}
	if b, _ := s2.Load("c"); len(b.Jobs) != 1 || b.Dropped != 1 {
		t.Fatalf("oversized job: %d jobs, %d dropped", len(b.Jobs), b.Dropped)
	}
}

func ptr[T any](v T) *T { return &v }

func TestStoreTornLastLine(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, dir, Options{})
	for i := 0; i < 3; i++ {
		if err := s.Append("b", BuildMeta{}, seqJob(i)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	// The writer died in the middle of the fourth record.
	full := jsonOf(t, record{Job: ptr(seqJob(3))})
	f, _ := os.OpenFile(filepath.Join(dir, "b.jsonl"), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(full[:len(full)/2])
	f.Close()

	b, err := s.Load("b")
	if err != nil || len(b.Jobs) != 3 || b.Skipped != 0 {
		t.Fatalf("torn last line: %v, %+v", err, b)
	}
	// A new writer ends the fragment's line before its first record: the
	// fragment is one unreadable line, the new record is whole.
	s2 := mustOpen(t, dir, Options{})
	if err := s2.Append("b", BuildMeta{}, seqJob(4)); err != nil {
		t.Fatal(err)
	}
	b, err = s2.Load("b")
	if err != nil || len(b.Jobs) != 4 || b.Skipped != 1 || b.Jobs[3].Source != "f00004.c" {
		t.Fatalf("after resume: %v, jobs %d skipped %d", err, len(b.Jobs), b.Skipped)
	}

	// A file whose header was torn is not a build; the next job starts it
	// afresh.
	os.WriteFile(filepath.Join(dir, "h.jsonl"), []byte(`{"format":"dcc-timel`), 0o600)
	if _, err := s2.Load("h"); err == nil {
		t.Fatal("a torn header loaded")
	}
	if l, _ := s2.List(); len(l) != 1 {
		t.Fatalf("List shows %d builds, want only b", len(l))
	}
	if err := s2.Append("h", BuildMeta{Dir: "/x"}, seqJob(0)); err != nil {
		t.Fatal(err)
	}
	if b, err := s2.Load("h"); err != nil || len(b.Jobs) != 1 || b.Dir != "/x" {
		t.Fatalf("restarted build: %v %+v", err, b)
	}

	// Garbage and an over-long line in the middle are skipped.
	f, _ = os.OpenFile(filepath.Join(dir, "h.jsonl"), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString("not json\n" + `{"job":{"where":"x"}}` + "\n" + strings.Repeat("y", maxLine+10) + "\n")
	f.Close()
	s2.Close()
	if err := s2.Append("h", BuildMeta{}, seqJob(1)); err != nil {
		t.Fatal(err)
	}
	if b, err := s2.Load("h"); err != nil || len(b.Jobs) != 2 || b.Skipped != 3 {
		t.Fatalf("garbage: %v, jobs %d skipped %d", err, len(b.Jobs), b.Skipped)
	}
}

// TestStoreParallelBuilds appends to more builds at once than the store
// keeps open, in interleaved order.
func TestStoreParallelBuilds(t *testing.T) {
	s := mustOpen(t, t.TempDir(), Options{})
	const builds = maxOpen + 3
	for i := 0; i < 5; i++ {
		for k := 0; k < builds; k++ {
			if err := s.Append(fmt.Sprintf("p%d", k), BuildMeta{Start: at(time.Duration(k))}, seqJob(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(s.open) > maxOpen {
		t.Fatalf("%d files open", len(s.open))
	}
	for k := 0; k < builds; k++ {
		b, err := s.Load(fmt.Sprintf("p%d", k))
		if err != nil || len(b.Jobs) != 5 {
			t.Fatalf("p%d: %v %d jobs", k, err, len(b.Jobs))
		}
	}
}

// TestStoreConcurrentReader loads the build in a loop, in this process
// and in another one, while the writer appends: every load must show a
// prefix of the jobs, whole.
func TestStoreConcurrentReader(t *testing.T) {
	dir := t.TempDir()
	const n = 900
	s := mustOpen(t, dir, Options{})
	meta := BuildMeta{Command: []string{"make"}, Start: at(0)}
	for i := 0; i < n/3; i++ {
		if err := s.Append("live", meta, seqJob(i)); err != nil {
			t.Fatal(err)
		}
	}

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "DCC_TIMELINE_READER="+dir, "DCC_TIMELINE_N="+strconv.Itoa(n))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	// The reader says when it has seen the build, so the rest is written
	// while it reads.
	if !lines.Scan() || !strings.HasPrefix(lines.Text(), "saw ") {
		cmd.Wait()
		t.Fatalf("reader did not start: %s", stderr.String())
	}

	var wg sync.WaitGroup
	stop := make(chan struct{})
	inproc := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		loads := 0
		for {
			select {
			case <-stop:
				inproc <- nil
				return
			default:
			}
			b, err := s.Load("live")
			if err == nil {
				err = checkPrefix(b)
			}
			if err != nil {
				inproc <- err
				return
			}
			loads++
		}
	}()
	// Write the rest in batches, each once the reader process has seen
	// the previous one, so its loads and these appends interleave by
	// construction (the in-process reader races them freely).
	seen := func() int {
		var k int
		fmt.Sscanf(lines.Text(), "saw %d", &k)
		return k
	}
	const batch = 100
	last := lines.Text()
	for i := n / 3; i < n; i++ {
		if err := s.Append("live", meta, seqJob(i)); err != nil {
			t.Fatal(err)
		}
		if (i+1)%batch == 0 {
			for seen() < i+1 && lines.Scan() {
				last = lines.Text()
			}
		}
	}
	for lines.Scan() {
		last = lines.Text()
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("reader process: %v\n%s", err, stderr.String())
	}
	close(stop)
	wg.Wait()
	if err := <-inproc; err != nil {
		t.Fatalf("in-process reader: %v", err)
	}
	t.Logf("reader process: %s", last)
}

// checkPrefix checks that b holds jobs 0..k-1 in order, all whole: Load
// has validated each, and the fields written last must be there.
func checkPrefix(b *Build) error {
	if b.Skipped != 0 {
		return fmt.Errorf("%d records skipped", b.Skipped)
	}
	for i := range b.Jobs {
		j, want := &b.Jobs[i], seqJob(i)
		if j.Source != want.Source || j.BytesOut != want.BytesOut || len(j.Phases) != len(want.Phases) ||
			!j.End().Equal(want.End()) {
			return fmt.Errorf("job %d: got %+v, want %+v", i, *j, want)
		}
	}
	return nil
}

// readerProcess loads the build until it holds DCC_TIMELINE_N jobs,
// printing "saw K" each time the count grows. It exits 1 on a torn or
// out-of-order load, 2 if the deadline passes.
func readerProcess(dir string) int {
	n, _ := strconv.Atoi(os.Getenv("DCC_TIMELINE_N"))
	s, err := OpenOptions(dir, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	deadline := time.Now().Add(60 * time.Second)
	seen, loads, partial := -1, 0, 0
	for time.Now().Before(deadline) {
		b, err := s.Load("live")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if err := checkPrefix(b); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		loads++
		if len(b.Jobs) < n {
			partial++
		}
		if len(b.Jobs) > seen {
			seen = len(b.Jobs)
			fmt.Printf("saw %d jobs after %d loads (%d while writing)\n", seen, loads, partial)
		}
		if seen == n {
			return 0
		}
	}
	fmt.Fprintf(os.Stderr, "deadline: saw %d of %d jobs\n", seen, n)
	return 2
}

// BenchmarkAppend is the cost the agent pays per compile: validate,
// encode and one write(2) of a remote job with six phases. The build
// changes every 20000 jobs, so creation and pruning are in the figure and
// the disk use stays bounded.
func BenchmarkAppend(b *testing.B) {
	s, err := OpenOptions(b.TempDir(), Options{Keep: 2})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	j := remoteJob("src/backend/optimizer/plan/createplan.c", "sun1.build.example.com", 3, 0)
	j.Output, j.BytesOut, j.BytesIn, j.WaitEstimate = "src/backend/optimizer/plan/createplan.o", 412_345, 98_765, 3*time.Millisecond
	meta := BuildMeta{Command: []string{"make", "-j20"}, Dir: "/home/user/src/postgres", Start: at(0)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Append("bench-"+strconv.Itoa(i/20000), meta, j); err != nil {
			b.Fatal(err)
		}
	}
}
