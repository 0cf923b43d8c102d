package adapter_test

import (
	"encoding/base64"
	"testing"

	"vmdap/vmm/vmmtest"
)

func vmmtestRequire(t *testing.T) { vmmtest.RequireKVM(t) }

func buildExample(t *testing.T) string { return vmmtest.BuildExample(t, "kernel").Path }

func vmmtestGuest(t *testing.T, name string) string { return vmmtest.BuildGuest(t, name).Path }

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
