package adapter_test

import (
	"testing"

	"vmdap/vmm/vmmtest"
)

func vmmtestRequire(t *testing.T) { vmmtest.RequireKVM(t) }

func buildExample(t *testing.T) string { return vmmtest.BuildExample(t, "kernel").Path }
