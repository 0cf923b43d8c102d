package adapter

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
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
