package sandbox

import (
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// system is what every compiler needs on a Linux system besides its own
// files, and why. docs/security.md repeats the list.
var system = Paths{
	ReadDirs: []string{
		// Shared libraries (libc, libLLVM, libisl, libbfd...), locales and
		// gconv modules, and the trees of gcc and clang on Debian.
		"/usr/lib",
		// The same where /usr is not merged; on Debian 12 these are links
		// to /usr/lib, which Landlock resolves, so they add nothing there.
		"/lib", "/lib64", "/usr/lib64",
		// System headers: a .s source may .include them, an .incbin may
		// name them; nothing there is secret.
		"/usr/include",
		// Translated diagnostics for the job's LANG, and locale.alias.
		"/usr/share/locale",
	},
	ReadFiles: []string{
		"/etc/ld.so.cache", // the dynamic loader's index of libraries
		// clang's driver reads these to pick distribution defaults.
		"/etc/os-release", "/etc/lsb-release", "/etc/debian_version", "/etc/redhat-release",
		"/dev/urandom", // random seeds
		"/dev/zero",    // old programs map it for anonymous memory
	},
}

// Paths returns what compiler may read and execute under this policy: the
// system list, what Toolchain finds for it, and the admin's directories.
func (c Config) Paths(ctx context.Context, compiler string) (Paths, error) {
	tc, err := Toolchain(ctx, compiler)
	if err != nil {
		return Paths{}, err
	}
	return normalize(tc.merge(Paths{ExecDirs: c.ExecDirs, ReadDirs: c.ReadDirs})), nil
}

type toolchainKey struct {
	path  string
	size  int64
	mtime time.Time
}

var toolchains struct {
	sync.Mutex
	m map[toolchainKey]Paths
}

// Toolchain returns the files and directories compiler needs, with the
// system list: for an ELF compiler, the compiler, the programs its driver
// runs for a compile (cc1, cc1plus, cc1obj, cc1objplus, as, as it reports
// them with -print-prog-name) and the dynamic loader of each, executable;
// their RUNPATH directories and its -print-search-dirs install and library
// directories, readable. A script compiler gets its own directory, its
// interpreter's and the system's program trees (/usr/lib, /usr/libexec)
// executable, since scripts run other programs. The result
// is cached per path, size and modification time, so an upgraded compiler
// is looked at again.
func Toolchain(ctx context.Context, compiler string) (Paths, error) {
	fi, err := os.Stat(compiler)
	if err != nil {
		return Paths{}, err
	}
	key := toolchainKey{compiler, fi.Size(), fi.ModTime()}
	toolchains.Lock()
	p, ok := toolchains.m[key]
	toolchains.Unlock()
	if ok {
		return p, nil
	}
	p, err = derive(ctx, compiler)
	if err != nil {
		return Paths{}, err
	}
	p = normalize(system.merge(p))
	toolchains.Lock()
	if toolchains.m == nil {
		toolchains.m = make(map[toolchainKey]Paths)
	}
	toolchains.m[key] = p
	toolchains.Unlock()
	return p, nil
}

func derive(ctx context.Context, compiler string) (Paths, error) {
	real, err := filepath.EvalSymlinks(compiler)
	if err != nil {
		return Paths{}, err
	}
	var p Paths
	if interp, ok := shebang(real); ok {
		// A script runs other programs, which cannot be known from here:
		// a wrapper that execs gcc needs gcc's cc1 under /usr/lib.
		p.ExecDirs = append(p.ExecDirs, filepath.Dir(real), "/usr/lib", "/usr/libexec")
		if ri, err := filepath.EvalSymlinks(interp); err == nil {
			p.ExecDirs = append(p.ExecDirs, filepath.Dir(ri))
			p = p.merge(elfDeps(ri))
		}
		return p, nil
	}
	f, err := elf.Open(real)
	if err != nil {
		return Paths{}, fmt.Errorf("compiler %s is neither ELF nor a script: %w", compiler, err)
	}
	f.Close()
	p.ExecFiles = append(p.ExecFiles, real)
	p = p.merge(elfDeps(real))
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// The queries run at once: a clang driver takes a good part of a
	// second each on a loaded machine, and the first job waits for them.
	progs := []string{"cc1", "cc1plus", "cc1obj", "cc1objplus", "as"}
	outs := make([]string, len(progs)+1)
	var wg sync.WaitGroup
	for i, arg := range append(prefixAll("-print-prog-name=", progs), "-print-search-dirs") {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i] = query(ctx, compiler, arg)
		}()
	}
	wg.Wait()
	for _, out := range outs[:len(progs)] {
		out = strings.TrimSpace(out)
		if out == "" || strings.ContainsAny(out, "\n") {
			continue
		}
		if !filepath.IsAbs(out) {
			// The driver runs a bare name from PATH.
			if out, err = exec.LookPath(out); err != nil {
				continue
			}
		}
		if rp, err := filepath.EvalSymlinks(out); err == nil {
			p.ExecFiles = append(p.ExecFiles, rp)
			p = p.merge(elfDeps(rp))
		}
	}
	for _, line := range strings.Split(outs[len(progs)], "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok || (k != "install" && k != "libraries") {
			continue
		}
		for _, d := range strings.Split(strings.TrimPrefix(v, "="), ":") {
			if d != "" {
				p.ReadDirs = append(p.ReadDirs, d)
			}
		}
	}
	return p, nil
}

func prefixAll(prefix string, l []string) []string {
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = prefix + s
	}
	return out
}

// query runs the compiler with one informational option and returns its
// standard output, capped; "" if it fails.
func query(ctx context.Context, compiler, arg string) string {
	cmd := exec.CommandContext(ctx, compiler, arg)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LANG=C"}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return ""
	}
	if err := cmd.Start(); err != nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(out, 64<<10))
	io.Copy(io.Discard, out)
	if cmd.Wait() != nil {
		return ""
	}
	return string(b)
}

// shebang returns the interpreter of a #! script.
func shebang(path string) (string, bool) {
	f, err := os.Open(path)
	if err != nil {
		return "", false
	}
	defer f.Close()
	head := make([]byte, 256)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	if !bytes.HasPrefix(head, []byte("#!")) {
		return "", false
	}
	line, _, _ := bytes.Cut(head[2:], []byte("\n"))
	fields := strings.Fields(string(line))
	if len(fields) == 0 || !filepath.IsAbs(fields[0]) {
		return "", false
	}
	return fields[0], true
}

// elfDeps returns what the kernel and the loader open to start an ELF
// program: its interpreter (the kernel opens it for execution) and its
// RUNPATH or RPATH directories ($ORIGIN expanded).
func elfDeps(path string) Paths {
	var p Paths
	f, err := elf.Open(path)
	if err != nil {
		return p
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type != elf.PT_INTERP {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(prog.Open(), 4096))
		if err == nil {
			if ri, err := filepath.EvalSymlinks(string(bytes.TrimRight(b, "\x00"))); err == nil {
				p.ExecFiles = append(p.ExecFiles, ri)
			}
		}
	}
	for _, tag := range []elf.DynTag{elf.DT_RUNPATH, elf.DT_RPATH} {
		vals, _ := f.DynString(tag)
		for _, v := range vals {
			for _, d := range strings.Split(v, ":") {
				d = strings.ReplaceAll(strings.ReplaceAll(d, "${ORIGIN}", "$ORIGIN"), "$ORIGIN", filepath.Dir(path))
				if filepath.IsAbs(d) && !strings.Contains(d, "$") {
					p.ReadDirs = append(p.ReadDirs, d)
				}
			}
		}
	}
	return p
}

// normalize resolves links, drops paths that do not exist, and drops each
// path that another already covers with at least the same rights, so the
// list a job carries (and an admin reads in a log) is short and exact.
func normalize(p Paths) Paths {
	type entry struct {
		path string
		rank int // 0 read file, 1 exec file, 2 read dir, 3 exec dir
	}
	var all []entry
	add := func(rank int, paths []string) {
		for _, s := range paths {
			r, err := filepath.EvalSymlinks(s)
			if err != nil || !filepath.IsAbs(r) {
				continue
			}
			fi, err := os.Stat(r)
			if err != nil {
				continue
			}
			if rk := rank; fi.IsDir() != (rk >= 2) {
				// A file in a directory list keeps the file form of its
				// rights; a directory in a file list is dropped.
				if fi.IsDir() {
					continue
				}
				rk -= 2
				all = append(all, entry{r, rk})
				continue
			}
			all = append(all, entry{r, rank})
		}
	}
	add(0, p.ReadFiles)
	add(1, p.ExecFiles)
	add(2, p.ReadDirs)
	add(3, p.ExecDirs)
	covers := func(d, e entry) bool {
		if d.rank < 2 || d == e {
			return false
		}
		under := e.path == d.path || strings.HasPrefix(e.path, d.path+"/") || d.path == "/"
		// An exec directory covers everything beneath; a read directory
		// covers what is only read beneath it.
		return under && (d.rank == 3 || e.rank == 0 || e.rank == 2)
	}
	var out Paths
	seen := map[entry]bool{}
	for _, e := range all {
		if seen[e] {
			continue
		}
		seen[e] = true
		covered := false
		for _, d := range all {
			if covers(d, e) {
				covered = true
				break
			}
		}
		if covered {
			continue
		}
		switch e.rank {
		case 0:
			out.ReadFiles = append(out.ReadFiles, e.path)
		case 1:
			out.ExecFiles = append(out.ExecFiles, e.path)
		case 2:
			out.ReadDirs = append(out.ReadDirs, e.path)
		case 3:
			out.ExecDirs = append(out.ExecDirs, e.path)
		}
	}
	for _, l := range []*[]string{&out.ReadFiles, &out.ExecFiles, &out.ReadDirs, &out.ExecDirs} {
		sort.Strings(*l)
	}
	return out
}
