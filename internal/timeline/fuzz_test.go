package timeline

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzReadBuild feeds arbitrary bytes to the build-file reader: it must
// never panic, every job it returns must be valid, and every view must
// render what it returns.
func FuzzReadBuild(f *testing.F) {
	dir := f.TempDir()
	s, err := OpenOptions(dir, Options{})
	if err != nil {
		f.Fatal(err)
	}
	b := synthBuild(5, 2, 1)
	for _, j := range b.Jobs {
		s.Append("seed", BuildMeta{Command: b.Command, Dir: b.Dir, Start: b.Start}, j)
	}
	s.Close()
	seed, err := os.ReadFile(filepath.Join(dir, "seed.jsonl"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add(seed[:len(seed)/2])
	f.Add([]byte(`{"format":"dcc-timeline/1","id":"x"}` + "\n" + `{"dropped":3}` + "\n" + `{"job":{}}` + "\n"))
	f.Add([]byte(`{"format":"dcc-timeline/1","id":"x"}` + "\n" + `{"job":{"where":"local","slot":-1,"phases":[` +
		`{"name":"local_compile","start":"0001-01-01T00:00:00.000000001Z","end":"9999-12-31T23:59:59Z"}]}}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := readBuild(bytes.NewReader(data))
		if err != nil {
			return
		}
		for i := range got.Jobs {
			if err := got.Jobs[i].Validate(); err != nil {
				t.Fatalf("reader returned an invalid job: %v", err)
			}
		}
		var out bytes.Buffer
		if err := WriteTrace(&out, got); err != nil {
			t.Fatal(err)
		}
		if err := WriteHTML(&out, got); err != nil {
			t.Fatal(err)
		}
		if err := WriteSummary(&out, got); err != nil {
			t.Fatal(err)
		}
	})
}
