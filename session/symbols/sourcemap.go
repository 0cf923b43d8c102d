package symbols

import (
	"path"
	"sort"
	"strings"
)

// MapSources rewrites the source paths the line tables name by prefix,
// as lldb-dap's sourceMap, Delve's substitutePath and cppdbg's
// sourceFileMap do: m maps a prefix of the paths in the image (say
// "/build/linux-6.12") to where that tree is here. The longest matching
// prefix wins, on path-component boundaries. Everything that names a
// source file afterwards (frames, line breakpoints, Loaded Sources) uses
// the mapped paths, so a breakpoint set in the local file matches.
func (t *Table) MapSources(m map[string]string) {
	type pair struct{ from, to string }
	var pairs []pair
	for from, to := range m {
		if from = cleanPrefix(from); from != "" {
			pairs = append(pairs, pair{from, cleanPrefix(to)})
		}
	}
	if len(pairs) == 0 {
		return
	}
	sort.Slice(pairs, func(i, j int) bool { return len(pairs[i].from) > len(pairs[j].from) })
	t.mu.Lock()
	defer t.mu.Unlock()
	t.byBase = map[string][]int32{}
	for id, f := range t.files {
		if id == 0 {
			continue
		}
		for _, p := range pairs {
			if rest, ok := cutPathPrefix(f, p.from); ok {
				f = path.Join(p.to, rest)
				if p.to == "" {
					f = rest
				}
				break
			}
		}
		t.files[id] = f
		b := f[strings.LastIndexByte(f, '/')+1:]
		t.byBase[b] = append(t.byBase[b], int32(id))
	}
}

func cleanPrefix(p string) string {
	p = strings.ReplaceAll(strings.TrimSpace(p), `\`, "/")
	if p == "" {
		return ""
	}
	return path.Clean(p)
}

// cutPathPrefix reports whether p begins with the path prefix (whole
// components) and returns the rest.
func cutPathPrefix(p, prefix string) (string, bool) {
	if prefix == "/" {
		return strings.TrimPrefix(p, "/"), strings.HasPrefix(p, "/")
	}
	if !strings.HasPrefix(p, prefix) {
		return "", false
	}
	rest := p[len(prefix):]
	if rest == "" {
		return "", true
	}
	if rest[0] != '/' {
		return "", false
	}
	return rest[1:], true
}

// RelativeCompDirs returns the compile directories that are relative
// paths, each once, sorted (Debian's kernel is compiled in
// debian/build/build_amd64_none_cloud-amd64 and says so). gdb looks for
// such a unit's files from its working directory.
func (t *Table) RelativeCompDirs() []string {
	seen := map[string]bool{}
	var out []string
	for _, u := range t.units {
		if d := u.compDir; d != "" && !isAbs(d) && !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	sort.Strings(out)
	return out
}
