package compiler

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const gccV = `Using built-in specs.
COLLECT_GCC=gcc
COLLECT_LTO_WRAPPER=/usr/lib/gcc/x86_64-linux-gnu/12/lto-wrapper
OFFLOAD_TARGET_NAMES=nvptx-none:amdgcn-amdhsa
OFFLOAD_TARGET_DEFAULT=1
Target: x86_64-linux-gnu
Configured with: ../src/configure -v --with-pkgversion='Debian 12.2.0-14' --with-bugurl=file:///usr/share/doc/gcc-12/README.Bugs --enable-languages=c,ada,c++,go,d,fortran,objc,obj-c++,m2 --prefix=/usr --with-gcc-major-version-only --program-suffix=-12 --program-prefix=x86_64-linux-gnu- --enable-shared --build=x86_64-linux-gnu --host=x86_64-linux-gnu --target=x86_64-linux-gnu
Thread model: posix
Supported LTO compression algorithms: zlib zstd
gcc version 12.2.0 (Debian 12.2.0-14) 
`

const clangV = `Debian clang version 14.0.6
Target: x86_64-pc-linux-gnu
Thread model: posix
InstalledDir: /usr/bin
Found candidate GCC installation: /usr/bin/../lib/gcc/x86_64-linux-gnu/12
Selected GCC installation: /usr/bin/../lib/gcc/x86_64-linux-gnu/12
Candidate multilib: .;@m64
Selected multilib: .;@m64
`

const crossV = `Using built-in specs.
COLLECT_GCC=aarch64-linux-gnu-gcc
COLLECT_LTO_WRAPPER=/usr/lib/gcc-cross/aarch64-linux-gnu/12/lto-wrapper
Target: aarch64-linux-gnu
Configured with: ../src/configure -v --with-pkgversion='Debian 12.2.0-14' --with-gcc-major-version-only --program-suffix=-12 --enable-shared --build=x86_64-linux-gnu --host=x86_64-linux-gnu --target=aarch64-linux-gnu --program-prefix=aarch64-linux-gnu- --includedir=/usr/aarch64-linux-gnu/include
Thread model: posix
Supported LTO compression algorithms: zlib zstd
gcc version 12.2.0 (Debian 12.2.0-14) 
`

func TestParseVersionOutput(t *testing.T) {
	tests := []struct {
		name            string
		in              string
		target, version string
	}{
		{"gcc", gccV, "x86_64-linux-gnu", "gcc version 12.2.0 (Debian 12.2.0-14)"},
		{"clang", clangV, "x86_64-pc-linux-gnu", "Debian clang version 14.0.6"},
		{"cross gcc", crossV, "aarch64-linux-gnu", "gcc version 12.2.0 (Debian 12.2.0-14)"},
		{"CRLF line ends", strings.ReplaceAll(clangV, "\n", "\r\n"), "x86_64-pc-linux-gnu", "Debian clang version 14.0.6"},
		{"Apple clang", "Apple clang version 15.0.0 (clang-1500.1.0.2.5)\nTarget: arm64-apple-darwin23.2.0\nThread model: posix\n", "arm64-apple-darwin23.2.0", "Apple clang version 15.0.0 (clang-1500.1.0.2.5)"},
		{"version line before Configured", "gcc version 9.4.0 (Ubuntu)\nTarget: x86_64-linux-gnu\nConfigured with: --foo version 1.0\n", "x86_64-linux-gnu", "gcc version 9.4.0 (Ubuntu)"},
		{"Configured with a version-like pkgversion", "Target: t\nConfigured with: ../configure --with-pkgversion='My version 3'\ngcc version 13.1.0\n", "t", "gcc version 13.1.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := ParseVersionOutput(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if id.Target != tt.target || id.Version != tt.version {
				t.Fatalf("got %+v", id)
			}
			if id.Fingerprint != tt.target+" "+tt.version {
				t.Fatalf("fingerprint %q", id.Fingerprint)
			}
			if strings.Contains(id.Version, "Configured") || strings.Contains(id.Version, "major-version-only") {
				t.Fatalf("version taken from the configure line: %q", id.Version)
			}
		})
	}
}

func TestParseVersionOutputErrors(t *testing.T) {
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"garbage", "hello world\nnothing to see\n\x00\xff"},
		{"no target", "gcc version 12.2.0\n"},
		{"no version", "Target: x86_64-linux-gnu\nThread model: posix\n"},
		{"only the configure line", "Target: x86_64-linux-gnu\nConfigured with: ../configure --with-gcc-major-version-only version 12\n"},
		{"version without a number", "Target: x\nsome version string\n"},
		{"error message", "gcc: error: unrecognized command-line option '-v'\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if id, err := ParseVersionOutput(tt.in); err == nil {
				t.Fatalf("no error, got %+v", id)
			}
		})
	}
}

// exe writes an executable shell script.
func exe(t *testing.T, path, script string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestResolve(t *testing.T) {
	root := t.TempDir()
	self := filepath.Join(root, "bin", "dcc")
	exe(t, self, "exit 0\n")
	masq := filepath.Join(root, "masq")
	real := filepath.Join(root, "real")
	other := filepath.Join(root, "other")
	noexec := filepath.Join(root, "noexec")
	dirs := filepath.Join(root, "dirs")
	hard := filepath.Join(root, "hard")
	for _, d := range []string{masq, real, other, noexec, dirs, hard} {
		os.MkdirAll(d, 0o755)
	}
	// masq/gcc and masq/cc are dcc through symlinks (absolute and relative).
	if err := os.Symlink(self, filepath.Join(masq, "gcc")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../bin/dcc", filepath.Join(masq, "cc")); err != nil {
		t.Fatal(err)
	}
	// hard/gcc is dcc through a hard link.
	if err := os.Link(self, filepath.Join(hard, "gcc")); err != nil {
		t.Fatal(err)
	}
	exe(t, filepath.Join(real, "gcc"), "echo real\n")
	exe(t, filepath.Join(real, "cc"), "echo real\n")
	exe(t, filepath.Join(other, "gcc"), "echo other\n")
	os.WriteFile(filepath.Join(noexec, "gcc"), []byte("not executable"), 0o644)
	os.MkdirAll(filepath.Join(dirs, "gcc"), 0o755)
	// A dangling symlink.
	os.Symlink(filepath.Join(root, "nowhere"), filepath.Join(dirs, "clang"))

	path := func(ds ...string) string { return strings.Join(ds, string(os.PathListSeparator)) }
	tests := []struct {
		name, path, cmd, self string
		want                  string // "" means ErrNotFound
	}{
		{"first on PATH", path(real, other), "gcc", self, filepath.Join(real, "gcc")},
		{"skips masquerade symlink", path(masq, real), "gcc", self, filepath.Join(real, "gcc")},
		{"skips relative masquerade symlink", path(masq, real), "cc", self, filepath.Join(real, "cc")},
		{"skips hard link to self", path(hard, other), "gcc", self, filepath.Join(other, "gcc")},
		{"skips non-executable and directories", path(noexec, dirs, other), "gcc", self, filepath.Join(other, "gcc")},
		{"only self on PATH", path(masq, hard), "gcc", self, ""},
		{"not on PATH", path(real), "clang", self, ""},
		{"dangling symlink", path(dirs), "clang", self, ""},
		{"empty PATH", "", "gcc", self, ""},
		{"unknown self skips nothing", path(masq, real), "gcc", filepath.Join(root, "no-such-self"), filepath.Join(masq, "gcc")},
		{"slash path as is", path(real), "/opt/x/bin/gcc", self, "/opt/x/bin/gcc"},
		{"relative slash path as is", path(real), "./gcc", self, "./gcc"},
		{"slash path to other binary", path(), filepath.Join(other, "gcc"), self, filepath.Join(other, "gcc")},
		{"slash path that is self", path(real), filepath.Join(masq, "gcc"), self, ""},
		{"slash path that is self directly", path(real), self, self, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("PATH", tt.path)
			got, err := Resolve(tt.cmd, tt.self)
			if tt.want == "" {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("Resolve = %q, %v; want ErrNotFound", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Resolve = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestProbeRealCompilers(t *testing.T) {
	ctx := context.Background()
	ids := map[string]Identity{}
	for _, name := range []string{"gcc", "g++", "cc", "clang"} {
		p, err := exec.LookPath(name)
		if err != nil {
			t.Skipf("%s not installed", name)
		}
		id, err := Probe(ctx, p)
		if err != nil {
			t.Fatalf("Probe(%s): %v", p, err)
		}
		if id.Target == "" || !strings.Contains(id.Version, "version") || id.Fingerprint != id.Target+" "+id.Version {
			t.Fatalf("%s: %+v", name, id)
		}
		ids[name] = id
	}
	// gcc, g++ and cc here are one gcc installation.
	if ids["gcc"].Fingerprint != ids["g++"].Fingerprint {
		t.Errorf("gcc %q != g++ %q", ids["gcc"].Fingerprint, ids["g++"].Fingerprint)
	}
	if real, _ := filepath.EvalSymlinks(mustLook(t, "cc")); strings.Contains(filepath.Base(real), "gcc") && ids["gcc"].Fingerprint != ids["cc"].Fingerprint {
		t.Errorf("gcc %q != cc %q", ids["gcc"].Fingerprint, ids["cc"].Fingerprint)
	}
	if ids["clang"].Fingerprint == ids["gcc"].Fingerprint {
		t.Errorf("clang and gcc share fingerprint %q", ids["gcc"].Fingerprint)
	}
	if !strings.Contains(ids["clang"].Version, "clang") {
		t.Errorf("clang version %q", ids["clang"].Version)
	}
}

func mustLook(t *testing.T, name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skip(name, "not installed")
	}
	return p
}

func TestProbeFailures(t *testing.T) {
	dir := t.TempDir()
	failing := filepath.Join(dir, "failing")
	exe(t, failing, "echo 'Target: x'; echo 'gcc version 1.0'; exit 1\n")
	garbage := filepath.Join(dir, "garbage")
	exe(t, garbage, "echo hello\n")
	tests := []struct{ name, path string }{
		{"exit status 1", failing},
		{"no version", garbage},
		{"missing", filepath.Join(dir, "missing")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if id, err := Probe(context.Background(), tt.path); err == nil {
				t.Fatalf("Probe = %+v, nil", id)
			}
		})
	}
}

// fakeCompiler writes a script that prints -v output with the given
// version and counts its runs in dir/count.
func fakeCompiler(t *testing.T, path, version string) {
	t.Helper()
	count := filepath.Join(filepath.Dir(path), "count")
	exe(t, path, fmt.Sprintf("echo x >> %q\necho 'Target: x86_64-linux-gnu' >&2\necho 'gcc version %s (test)' >&2\n", count, version))
}

func runs(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "count"))
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "x")
}

func TestCache(t *testing.T) {
	dir := t.TempDir()
	cc := filepath.Join(dir, "cc")
	fakeCompiler(t, cc, "1.0")
	var c Cache // the zero Cache is ready
	ctx := context.Background()
	mtime := time.Now().Add(-time.Hour).Truncate(time.Second)
	os.Chtimes(cc, mtime, mtime)

	steps := []struct {
		name        string
		change      func()
		wantVersion string
		wantRuns    int
	}{
		{"first probe", func() {}, "gcc version 1.0 (test)", 1},
		{"cached", func() {}, "gcc version 1.0 (test)", 1},
		{"cached again", func() {}, "gcc version 1.0 (test)", 1},
		{"mtime changes", func() {
			m := mtime.Add(time.Minute)
			os.Chtimes(cc, m, m)
		}, "gcc version 1.0 (test)", 2},
		{"cached after mtime change", func() {}, "gcc version 1.0 (test)", 2},
		{"upgraded in place, same size, new mtime", func() {
			fakeCompiler(t, cc, "2.0")
			m := mtime.Add(2 * time.Minute)
			os.Chtimes(cc, m, m)
		}, "gcc version 2.0 (test)", 3},
		{"replaced, different size, same mtime", func() {
			fakeCompiler(t, cc, "3.0.1")
			m := mtime.Add(2 * time.Minute)
			os.Chtimes(cc, m, m)
		}, "gcc version 3.0.1 (test)", 4},
	}
	for _, st := range steps {
		st.change()
		id, err := c.Get(ctx, cc)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if id.Version != st.wantVersion {
			t.Fatalf("%s: version %q, want %q", st.name, id.Version, st.wantVersion)
		}
		if got := runs(t, dir); got != st.wantRuns {
			t.Fatalf("%s: %d probes, want %d", st.name, got, st.wantRuns)
		}
	}
	if _, err := c.Get(ctx, filepath.Join(dir, "missing")); err == nil {
		t.Fatal("Get(missing) succeeded")
	}
}

func TestCacheDoesNotCacheFailures(t *testing.T) {
	dir := t.TempDir()
	cc := filepath.Join(dir, "cc")
	exe(t, cc, "echo x >> "+filepath.Join(dir, "count")+"\nexit 3\n")
	var c Cache
	for range 3 {
		if _, err := c.Get(context.Background(), cc); err == nil {
			t.Fatal("Get of a failing compiler succeeded")
		}
	}
	if n := runs(t, dir); n != 3 {
		t.Fatalf("%d probes, want 3 (failures are not cached)", n)
	}
}

func TestCacheConcurrent(t *testing.T) {
	dir := t.TempDir()
	cc := filepath.Join(dir, "cc")
	fakeCompiler(t, cc, "4.2")
	var c Cache
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				id, err := c.Get(context.Background(), cc)
				if err != nil || id.Version != "gcc version 4.2 (test)" {
					t.Errorf("Get = %+v, %v", id, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := runs(t, dir); n < 1 || n > 8 {
		t.Fatalf("%d probes for 40 concurrent Gets", n)
	}
}
