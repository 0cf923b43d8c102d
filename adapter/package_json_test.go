package adapter

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestPackageJSONMatchesConfig keeps extension/package.json (the schema
// editors validate launch.json against) and the adapter's config structs
// one source of truth.
func TestPackageJSONMatchesConfig(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "extension", "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	var pkg struct {
		Contributes struct {
			Debuggers []struct {
				Type                    string `json:"type"`
				ConfigurationAttributes map[string]struct {
					Required   []string                   `json:"required"`
					Properties map[string]json.RawMessage `json:"properties"`
				} `json:"configurationAttributes"`
			} `json:"debuggers"`
		} `json:"contributes"`
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		t.Fatal(err)
	}
	if len(pkg.Contributes.Debuggers) != 1 || pkg.Contributes.Debuggers[0].Type != "vmdap" {
		t.Fatalf("package.json declares %+v", pkg.Contributes.Debuggers)
	}
	attrs := pkg.Contributes.Debuggers[0].ConfigurationAttributes
	for req, want := range map[string][]string{"launch": LaunchProperties(), "attach": AttachProperties()} {
		var got []string
		for k := range attrs[req].Properties {
			got = append(got, k)
		}
		sort.Strings(got)
		sort.Strings(want)
		if len(got) != len(want) {
			t.Fatalf("%s: package.json has %v, the adapter's struct %v", req, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: package.json has %v, the adapter's struct %v", req, got, want)
			}
		}
	}
	if r := attrs["launch"].Required; len(r) != 1 || r[0] != "program" {
		t.Fatalf("launch requires %v", r)
	}
}

// TestREADMEEditorConfigs: the README's configurations for nvim-dap, dape
// and Helix name only properties vmdap's launch and attach configurations
// have (or that every client sends), so a renamed property cannot leave
// them behind.
func TestREADMEEditorConfigs(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, k := range append(jsonFields(LaunchConfig{}), jsonFields(AttachConfig{})...) {
		known[k] = true
	}
	for k := range clientProps {
		known[k] = true
	}
	keys := map[string]*regexp.Regexp{
		"lua":   regexp.MustCompile(`(\w+) = (?:'|\d)`), // the configurations' fields
		"elisp": regexp.MustCompile(`:(\w+) `),          // plist keywords: the request's arguments
		"toml":  regexp.MustCompile(`args = \{ (\w+) = "\{0\}"(?:, (\w+) = "\{1\}")?`),
	}
	blocks := regexp.MustCompile("(?s)```(lua|elisp|toml)\n(.*?)```").FindAllStringSubmatch(string(b), -1)
	seen := map[string]int{}
	for _, bl := range blocks {
		lang, body := bl[1], bl[2]
		if !strings.Contains(body, "vmdap") {
			continue
		}
		if i := strings.Index(body, "dap.configurations"); lang == "lua" && i >= 0 {
			body = body[i:] // the configurations, not the adapter's own table
		}
		for _, m := range keys[lang].FindAllStringSubmatch(body, -1) {
			for _, k := range m[1:] {
				if k == "" {
					continue
				}
				seen[lang]++
				if !known[k] {
					t.Errorf("the README's %s configuration names %q, which vmdap's configurations do not have", lang, k)
				}
			}
		}
	}
	for _, lang := range []string{"lua", "elisp", "toml"} {
		if seen[lang] == 0 {
			t.Errorf("no %s configuration for vmdap found in the README", lang)
		}
	}
}
