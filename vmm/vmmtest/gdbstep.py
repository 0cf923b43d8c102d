# The gdb side of vmmtest.RunStepOracle: attach to QEMU's stub, and for
# each scenario in turn run to its breakpoint (the only one set), delete
# it, then give its commands (next, step, finish) one by one, printing
# the starting stop and the stop after each command as one JSON line
# prefixed "@@": the newest frame's function, file and line (inlined
# frames as gdb shows them), the pc, and the frame depth (frames above
# the outermost frame named by cfg["outer"]).
import gdb
import json
import time

cfg = json.load(open(STEP_CONFIG))


def where(scenario, index, cmd):
    f = gdb.newest_frame()
    sal = f.find_sal()
    depth = -1
    g, n = f, 0
    while g is not None and n < 64:
        if g.name() == cfg["outer"]:
            depth = n
            break
        try:
            g = g.older()
        except gdb.error:
            break
        n += 1
    print("@@" + json.dumps({
        "scenario": scenario,
        "index": index,
        "cmd": cmd,
        "func": f.name() or "",
        "file": sal.symtab.filename if sal.symtab else "",
        "line": sal.line,
        "pc": f.pc(),
        "depth": depth,
    }), flush=True)


def alive():
    return gdb.selected_inferior().pid and gdb.selected_thread() is not None


def main():
    # QEMU opens its stub's socket as it starts: retry for a few seconds.
    for i in range(200):
        try:
            gdb.execute("target remote " + cfg["remote"], to_string=True)
            break
        except gdb.error:
            if i == 199:
                raise
            time.sleep(0.025)
    for k, sc in enumerate(cfg["scenarios"]):
        bp = gdb.Breakpoint(sc["break"])
        try:
            gdb.execute("continue", to_string=True)
        except gdb.error as e:
            raise RuntimeError("scenario %d: the guest ended before %s: %s" % (k, sc["break"], e))
        if not alive():
            raise RuntimeError("scenario %d: the guest ended before %s" % (k, sc["break"]))
        bp.delete()
        where(k, 0, "")
        for i, cmd in enumerate(sc["cmds"] or []):
            try:
                gdb.execute(cmd, to_string=True)
            except gdb.error as e:
                raise RuntimeError("scenario %d: %s (command %d): %s" % (k, cmd, i + 1, e))
            if not alive():
                raise RuntimeError("scenario %d: the guest ended at %s (command %d)" % (k, cmd, i + 1))
            where(k, i + 1, cmd)


try:
    main()
except Exception as e:
    print("@@" + json.dumps({"error": "%s: %s" % (type(e).__name__, e)}), flush=True)
