package gdbremote

import (
	"context"
	"testing"

	"vmdap/vmm/vmmtest"
)

func BenchmarkZZSteps(b *testing.B) {
	g := vmmtest.BuildGuest(b, "mb", vmmtest.ELF32)
	q := qemuTarget("tcg", false)(&testing.T{}, g).(*Target)
	defer q.Close()
	spinLoop(b, q, g)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		q.Step(0)
		q.Wait(ctx)
	}
}

func BenchmarkZZRawSteps(b *testing.B) {
	g := vmmtest.BuildGuest(b, "mb", vmmtest.ELF32)
	q := qemuTarget("tcg", false)(&testing.T{}, g).(*Target)
	defer q.Close()
	spinLoop(b, q, g)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		q.c.Send("vCont;s:" + q.threads[0])
		q.c.Recv(ctx)
	}
}

func BenchmarkZZStepsNoAck(b *testing.B) {
	g := vmmtest.BuildGuest(b, "mb", vmmtest.ELF32)
	q := qemuTarget("tcg", false)(&testing.T{}, g).(*Target)
	defer q.Close()
	spinLoop(b, q, g)
	q.c.SkipAcks()
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		q.Step(0)
		q.Wait(ctx)
	}
}
