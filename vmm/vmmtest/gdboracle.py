# The gdb side of vmmtest.RunOracle: attach to QEMU's stub, set the
# breakpoints, continue from stop to stop, and print each stop as one JSON
# line prefixed "@@" (frames with their arguments and locals, and the
# requested globals, each value as gdb's text and its scalar leaves).
import gdb
import json
import time

cfg = json.load(open(ORACLE_CONFIG))


def leaves(v, path, out, depth=0):
    if len(out) > 400 or depth > 6:
        return
    try:
        t = v.type.strip_typedefs()
        c = t.code
        if v.is_optimized_out and c in (gdb.TYPE_CODE_STRUCT, gdb.TYPE_CODE_UNION, gdb.TYPE_CODE_ARRAY):
            # is_optimized_out is true when any part is: gdb prints the
            # members that are there, and so does vmdap; one leaf when
            # none is.
            part = {}
            leaves_of(v, t, c, path, part, depth)
            if all(x == "<optimized out>" for x in part.values()):
                out[path] = "<optimized out>"
            else:
                out.update(part)
            return
        if v.is_optimized_out:
            out[path] = "<optimized out>"
            return
        leaves_of(v, t, c, path, out, depth)
    except gdb.error as e:
        out[path] = "<error: %s>" % e


def leaves_of(v, t, c, path, out, depth):
    try:
        if c in (gdb.TYPE_CODE_STRUCT, gdb.TYPE_CODE_UNION):
            for f in t.fields():
                if f.is_base_class:
                    continue
                if not f.name:
                    # An anonymous member: C names its members from the
                    # parent. (A Rust enum's variant part has no name
                    # either: its value is the enum's, as vmdap shows it.)
                    if "::" not in str(t):
                        leaves(v[f], path, out, depth + 1)
                    continue
                leaves(v[f], path + "." + f.name, out, depth + 1)
        elif c == gdb.TYPE_CODE_ARRAY:
            if t.sizeof == 0:
                return  # a flexible array member: gdb shows no elements
            lo, hi = t.range()
            for i in range(lo, min(hi, lo + 15) + 1):
                leaves(v[i], "%s[%d]" % (path, i), out, depth + 1)
        elif c == gdb.TYPE_CODE_PTR and str(v) == "<synthetic pointer>":
            # DW_OP_implicit_pointer: no address, but a target (vmdap's
            # variables view names it *name, under the pointer).
            leaves(v.dereference(), path + ".*" + path.split(".")[-1], out, depth + 1)
        elif c == gdb.TYPE_CODE_PTR:
            out[path] = "0x%x" % int(v)
        elif c == gdb.TYPE_CODE_BOOL:
            out[path] = "true" if bool(v) else "false"
        elif c == gdb.TYPE_CODE_INT and t.sizeof > 8:
            out[path] = str(v)  # an __int128 (gdb's Python cannot take int() of it), in decimal
        elif c in (gdb.TYPE_CODE_INT, gdb.TYPE_CODE_CHAR, gdb.TYPE_CODE_ENUM):
            out[path] = str(int(v))
        elif c == gdb.TYPE_CODE_FLT:
            out[path] = str(v)  # gdb's own digits (0.100000001 for a float), as vmdap shows them
        else:
            out[path] = str(v)
    except gdb.error as e:
        out[path] = "<error: %s>" % e


def describe(name, v):
    d = {"name": name, "type": "", "text": "", "leaves": {}}
    try:
        d["type"] = str(v.type)
        d["text"] = str(v)
        leaves(v, name, d["leaves"])
    except gdb.error as e:
        d["text"] = "<error: %s>" % e
    return d


def frame_vars(f):
    args, locs = [], []
    try:
        b = f.block()
    except RuntimeError:
        return args, locs
    seen = set()
    while b is not None:
        for s in b:
            if not (s.is_argument or s.is_variable or s.is_constant):
                continue
            # One an inner block's variable shadows: in parentheses, as
            # vmdap (and Delve) show it.
            name = "(%s)" % s.name if s.name in seen else s.name
            seen.add(s.name)
            try:
                v = s.value(f)
            except gdb.error as e:
                d = {"name": name, "type": str(s.type), "text": "<error: %s>" % e, "leaves": {}}
            else:
                d = describe(name, v)
            (args if s.is_argument else locs).append(d)
        if b.function is not None:
            break
        b = b.superblock
    return args, locs


def stop(bps):
    f = gdb.newest_frame()
    pc = f.pc()
    hit = [i for i, b in enumerate(bps) if b is not None and any(l.address == pc for l in b.locations)]
    frames = []
    while f is not None and len(frames) < cfg["frames"]:
        sal = f.find_sal()
        args, locs = frame_vars(f)
        frames.append({
            "name": f.name() or "",
            "file": sal.symtab.filename if sal.symtab else "",
            "line": sal.line,
            "pc": f.pc(),
            "inline": f.type() == gdb.INLINE_FRAME,
            "args": args,
            "locals": locs,
        })
        try:
            f = f.older()
        except gdb.error:
            break
    gdb.newest_frame().select()
    globs = []
    for g in cfg["globals"]:
        try:
            globs.append(describe(g, gdb.parse_and_eval(g)))
        except gdb.error as e:
            globs.append({"name": g, "type": "", "text": "<error: %s>" % e, "leaves": {}})
    print("@@" + json.dumps({"pc": pc, "hit": hit, "frames": frames, "globals": globs}), flush=True)


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
    bps = []
    for spec in cfg["breaks"]:
        try:
            bps.append(gdb.Breakpoint(spec))
        except gdb.error:
            bps.append(None)
    for _ in range(cfg["max_stops"]):
        try:
            gdb.execute("continue", to_string=True)
        except gdb.error:
            return  # the guest exited: QEMU closed the connection
        if not gdb.selected_inferior().pid or not gdb.selected_thread():
            return
        stop(bps)


try:
    main()
except Exception as e:
    print("@@" + json.dumps({"error": "%s: %s" % (type(e).__name__, e)}), flush=True)
