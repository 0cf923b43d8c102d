# What drgn reads of a Linux kernel's core dump (QEMU's dump-guest-memory
# with -device vmcoreinfo), printed as one JSON object for the Go test to
# compare with vmdap's view of the same stop. Usage:
#   /usr/bin/python3 drgnoracle.py CORE VMLINUX
# Values come from drgn's helpers where drgn 0.0.22 has one (tasks, their
# state and CPU, the printk records, per_cpu, the idle tasks); where it
# has none (modules, mounts on 6.8+ kernels), from drgn objects read as
# the kernel's own code reads them (cited at each).
import json
import struct
import sys

from drgn import Program, offsetof
from drgn.helpers.linux.cpumask import for_each_possible_cpu
from drgn.helpers.linux.fs import mount_dst, mount_fstype, mount_src
from drgn.helpers.linux.list import list_for_each_entry
from drgn.helpers.linux.percpu import per_cpu, per_cpu_ptr
from drgn.helpers.linux.pid import for_each_task
from drgn.helpers.linux.printk import get_printk_records
from drgn.helpers.linux.rbtree import rbtree_inorder_for_each_entry
from drgn.helpers.linux.sched import idle_task, task_cpu, task_state_to_char

PF_KTHREAD = 0x00200000  # include/linux/sched.h


def text(b):
    return b.decode("utf-8", errors="replace")


def current_of(prog, cpu):
    # What the kernel's `current` reads: pcpu_hot.current_task (6.2+),
    # the per-CPU current_task before.
    try:
        return per_cpu(prog["pcpu_hot"], cpu).current_task.read_()
    except KeyError:
        return per_cpu(prog["current_task"], cpu).read_()


def state_char(t):
    # drgn 0.0.22's task_state_to_char predates two rules of the kernel's
    # __task_state_index (include/linux/sched.h, 2023): any state with all
    # of TASK_IDLE's bits (a freezable idle wait too) is I, and a frozen
    # task (TASK_FROZEN) or one waiting on an RT lock (TASK_RTLOCK_WAIT)
    # is D. Those states are mapped here; the others are drgn's.
    try:
        state = t.__state.value_()
    except AttributeError:
        state = t.state.value_()
    if state & (0x1000 | 0x8000):
        return "D"
    if state & 0x402 == 0x402:
        return "I"
    return task_state_to_char(t)


def tasks(prog, cpus):
    seen, out = set(), []
    running = {current_of(prog, c).value_() for c in cpus}
    # for_each_task walks the PID namespace's tasks; the idle tasks
    # (pid 0, one per CPU) are in none.
    all_tasks = list(for_each_task(prog)) + [idle_task(prog, c) for c in cpus]
    for t in all_tasks:
        a = t.value_()
        if a in seen:
            continue
        seen.add(a)
        # The stack of a task not running (drgn unwinds from where it was
        # switched out, by ORC or DWARF CFI), names and pcs.
        stack = []
        if a not in running:
            try:
                for f in prog.stack_trace(t):
                    # The function's name from the DWARF ("" in code with
                    # none, such as the entry code).
                    stack.append({"name": f.name or "", "pc": f.pc, "inline": f.is_inline})
            except Exception as e:
                stack = [{"name": f"error: {e}", "pc": 0, "inline": False}]
        out.append(
            {
                "stack": stack,
                "addr": a,
                "pid": t.pid.value_(),
                "tgid": t.tgid.value_(),
                # /proc/PID/status's PPid: the real parent's thread group.
                "ppid": t.real_parent.tgid.value_(),
                "state": state_char(t),
                "cpu": task_cpu(t),
                "comm": text(t.comm.string_()),
                "kthread": bool(t.flags.value_() & PF_KTHREAD),
                "running": a in running,
            }
        )
    return out


def log_records(prog):
    recs = get_printk_records(prog)
    # drgn 0.0.22 reads a record whose text block wrapped to the ring's
    # start from the ring's first byte, which is the block's id: the text
    # is after it (kernel/printk/printk_ringbuffer.c, get_data:
    # to_block(data_ring, 0)->data). Such records' text is read again
    # from there; the others are drgn's own reading.
    prb = prog["prb"].read_()
    if not prb:
        return recs
    desc_ring, data_ring = prb.desc_ring, prb.text_data_ring
    count, size_bits = 1 << desc_ring.count_bits.value_(), data_ring.size_bits.value_()
    id_size = prog.type("unsigned long").size
    data = data_ring.data.value_()
    # The descriptor and info arrays read whole (an object per element is
    # slow).
    desc_t, info_t = prog.type("struct prb_desc"), prog.type("struct printk_info")
    descs = prog.read(desc_ring.descs.value_(), count * desc_t.size)
    infos = prog.read(desc_ring.infos.value_(), count * info_t.size)
    o_begin, o_next = offsetof(desc_t, "text_blk_lpos.begin"), offsetof(desc_t, "text_blk_lpos.next")
    o_seq, o_len = offsetof(info_t, "seq"), offsetof(info_t, "text_len")
    fixed = {}
    for i in range(count):
        d, f = i * desc_t.size, i * info_t.size
        begin, nxt = struct.unpack_from("<QQ", descs, d + o_begin)[0], struct.unpack_from("<Q", descs, d + o_next)[0]
        if begin & 1 or (begin >> size_bits) + 1 != nxt >> size_bits:
            continue  # no data, or a block that does not wrap
        seq, text_len = struct.unpack_from("<Q", infos, f + o_seq)[0], struct.unpack_from("<H", infos, f + o_len)[0]
        n = min(text_len, (nxt & ((1 << size_bits) - 1)) - id_size)
        fixed[seq] = prog.read(data + id_size, max(n, 0))
    return [r._replace(text=fixed[r.seq]) if r.seq in fixed else r for r in recs]


def modules(prog):
    # kernel/module/procfs.c: /proc/modules shows module_total_size (every
    # mem[] region, the init ones too while they exist), module_refcount
    # (refcnt - MODULE_REF_BASE) and the users on source_list; the address
    # is the code's (mem[MOD_TEXT] since 6.4, core_layout before).
    state_t = prog.type("enum module_state")
    names = {v: n for n, v in state_t.enumerators}
    out = []
    for mod in list_for_each_entry("struct module", prog["modules"].address_of_(), "list"):
        try:
            mem = mod.mem
            text_base = mem[prog["MOD_TEXT"].value_()].base.value_()
            size = sum(mem[i].size.value_() for i in range(len(mem)))
        except AttributeError:
            text_base = mod.core_layout.base.value_()
            size = mod.core_layout.size.value_() + mod.init_layout.size.value_()
        users = [
            text(u.source.name.string_())
            for u in list_for_each_entry("struct module_use", mod.source_list.address_of_(), "source_list")
        ]
        # print_unload_info: a module with an init function and no exit
        # one cannot be unloaded.
        if mod.init.value_() != 0 and mod.exit.value_() == 0:
            users.append("[permanent]")
        out.append(
            {
                "addr": mod.value_(),
                "name": text(mod.name.string_()),
                "state": names.get(mod.state.value_(), str(mod.state.value_())).removeprefix("MODULE_STATE_"),
                "base": text_base,
                "size": size,
                "refs": mod.refcnt.counter.value_() - 1,
                "users": users,
            }
        )
    return out


def mounts(prog):
    # The initial namespace's mounts: an rbtree (mnt_namespace.mounts)
    # since 6.8, which drgn 0.0.22's for_each_mount predates; a list before.
    ns = prog["init_task"].nsproxy.mnt_ns
    try:
        ms = rbtree_inorder_for_each_entry("struct mount", ns.mounts.address_of_(), "mnt_node")
    except AttributeError:
        ms = list_for_each_entry("struct mount", ns.list.address_of_(), "mnt_list")
    return [
        {"addr": m.value_(), "dev": text(mount_src(m)), "dir": text(mount_dst(m)), "type": text(mount_fstype(m))}
        for m in ms
    ]


def resources(prog, root_name):
    # /proc/iomem and /proc/ioports (kernel/resource.c's r_show): each
    # resource under the root, depth first, indented two spaces a level,
    # its range in hex digits of the root's width (4 for roots that end
    # below 0x10000, else 8). The kernel caps the indentation at
    # MAX_IORES_LEVEL (5) levels.
    root = prog[root_name]
    width = 4 if root.end.value_() < 0x10000 else 8
    out = []

    def walk(r, depth):
        while r:
            name = r.name.string_().decode("utf-8", errors="replace") if r.name else "<BAD>"
            out.append(f"{'  ' * min(depth, 5)}{r.start.value_():0{width}x}-{r.end.value_():0{width}x} : {name}")
            walk(r.child.read_(), depth + 1)
            r = r.sibling.read_()

    walk(root.child.read_(), 0)
    return out


def hide_vcpu_pids(core):
    # QEMU writes each vCPU's number + 1 as its NT_PRSTATUS note's pr_pid
    # (at 32 in struct elf_prstatus), where the kernel's own crash dumps
    # write the pid of the task running there: drgn 0.0.22 takes pids 1
    # and 2 for running tasks and unwinds them from the vCPUs' registers.
    # The notes' pids are set to 0 (the idle tasks', whose stacks are not
    # compared).
    with open(core, "r+b") as f:
        for desc in prstatus_notes(f):
            f.seek(desc + 32)
            f.write(struct.pack("<I", 0))


def prstatus_notes(f):
    # The file offsets of the descriptors of an ELF core's NT_PRSTATUS
    # notes, in order (QEMU's: one per vCPU).
    f.seek(0)
    ehdr = f.read(64)
    phoff, phentsize, phnum = struct.unpack_from("<Q", ehdr, 32)[0], *struct.unpack_from("<HH", ehdr, 54)
    out = []
    for i in range(phnum):
        f.seek(phoff + i * phentsize)
        p_type, _, p_offset, _, _, p_filesz = struct.unpack("<IIQQQQ", f.read(40))
        if p_type != 4:  # PT_NOTE
            continue
        f.seek(p_offset)
        notes = f.read(p_filesz)
        off = 0
        while off + 12 <= len(notes):
            namesz, descsz, ntype = struct.unpack_from("<III", notes, off)
            name = notes[off + 12 : off + 12 + namesz].rstrip(b"\0")
            desc = off + 12 + (namesz + 3) // 4 * 4
            if name == b"CORE" and ntype == 1:  # NT_PRSTATUS
                out.append(p_offset + desc)
            off = desc + (descsz + 3) // 4 * 4
    return out


def user_mode(core):
    # Whether each vCPU was in user mode: the low two bits of its CS
    # selector in its NT_PRSTATUS note's user_regs_struct (pr_reg at 112
    # in struct elf_prstatus, cs the 18th register).
    out = []
    with open(core, "rb") as f:
        for desc in prstatus_notes(f):
            f.seek(desc + 112 + 17 * 8)
            out.append(struct.unpack("<Q", f.read(8))[0] & 3 == 3)
    return out


def main():
    core, vmlinux = sys.argv[1], sys.argv[2]
    vcpu_user = user_mode(core)
    hide_vcpu_pids(core)
    prog = Program()
    prog.set_core_dump(core)
    prog.load_debug_info([vmlinux])
    cpus = list(for_each_possible_cpu(prog))

    def cpu(c):
        rq, cur = per_cpu(prog["runqueues"], c), current_of(prog, c)
        return {
            "cpu": c,
            "nr_running": rq.nr_running.value_(),
            "curr_pid": rq.curr.pid.value_(),
            "current": cur.value_(),
            "current_pid": cur.pid.value_(),
            "current_comm": text(cur.comm.string_()),
            # A dynamically allocated per-CPU pointer (alloc_percpu).
            "system_wq_pwq": per_cpu_ptr(prog["system_wq"].cpu_pwq, c)[0].value_(),
        }

    sections = {
        "cpus": lambda: [cpu(c) for c in cpus],
        "tasks": lambda: tasks(prog, cpus),
        "log": lambda: [
            {"seq": r.seq, "ts": r.timestamp, "level": r.level, "text": text(r.text)}
            for r in log_records(prog)
        ],
        "modules": lambda: modules(prog),
        "mounts": lambda: mounts(prog),
        "iomem": lambda: resources(prog, "iomem_resource"),
        "ioports": lambda: resources(prog, "ioport_resource"),
        # jiffies is an ELF symbol only (the linker script places it on
        # jiffies_64), which drgn 0.0.22 does not take as an object.
        "jiffies": lambda: prog.read_u64(prog.symbol("jiffies").address),
        "nr_cpu_ids": lambda: prog["nr_cpu_ids"].value_(),
        "banner": lambda: text(prog["linux_banner"].string_()),
        "cmdline": lambda: text(prog["saved_command_line"].string_()),
        "init_comm": lambda: text(prog["init_task"].comm.string_()),
        "vcpu_user": lambda: vcpu_user,
    }
    # A section drgn cannot read (a kernel layout newer than drgn) is
    # named in errors, and the others still come.
    out, errors = {}, {}
    for name, fn in sections.items():
        try:
            out[name] = fn()
        except Exception as e:
            errors[name] = f"{type(e).__name__}: {e}"
    out["errors"] = errors
    print(json.dumps(out))


main()
