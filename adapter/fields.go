package adapter

import (
	"reflect"
	"strings"
)

// jsonFields lists the JSON property names of a config struct.
func jsonFields(v any) []string {
	t := reflect.TypeOf(v)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []string
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("json")
		if f := t.Field(i); f.Anonymous && tag == "" && f.Type.Kind() == reflect.Struct {
			out = append(out, jsonFields(reflect.New(f.Type).Elem().Interface())...) // promoted, as encoding/json does
			continue
		}
		name := strings.Split(tag, ",")[0]
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}

// LaunchProperties and AttachProperties name the configuration properties
// (for the package.json consistency test and the extension).
func LaunchProperties() []string { return jsonFields(LaunchConfig{}) }
func AttachProperties() []string { return jsonFields(AttachConfig{}) }
