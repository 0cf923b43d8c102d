package session

import (
	"fmt"
	"strings"
)

// The mount table of the initial mount namespace, as scripts/gdb's
// lx-mounts (and /proc/mounts) show it: each mount's device, where it is
// mounted and its file system type, read from struct mount through the
// kernel's types. The namespace keeps its mounts in an rbtree
// (mnt_namespace.mounts, Linux 6.8 and later) or a list (.list, before).

const (
	maxMounts    = 4096
	maxPathDepth = 256
)

// mountsCommand prints the mounts: device, mount point, type.
func (s *Session) mountsCommand(v int) (string, error) {
	k := s.kview(v)
	var tt, nt, mt, nst, dt, sbt, fst *ctype
	for _, c := range []struct {
		name string
		t    **ctype
	}{{"task_struct", &tt}, {"nsproxy", &nt}, {"mount", &mt}, {"mnt_namespace", &nst}, {"dentry", &dt}, {"super_block", &sbt}, {"file_system_type", &fst}} {
		var err error
		if *c.t, err = k.typ(c.name); err != nil {
			return "", err
		}
	}
	it, err := k.sym("init_task")
	if err != nil {
		return "", err
	}
	task, err := k.object(it, tt, "nsproxy")
	if err != nil {
		return "", err
	}
	nsp, err := k.object(task.uint("nsproxy"), nt, "mnt_ns")
	if err != nil {
		return "", fmt.Errorf("init_task.nsproxy: %w", err)
	}
	ns := nsp.uint("mnt_ns")
	var mounts []uint64
	var walkErr error // the walk ended early, after some mounts
	switch {
	case k.has(nst, "mounts") && k.has(mt, "mnt_node"):
		root, err := k.object(ns, nst, "mounts")
		if err != nil {
			return "", err
		}
		off, err := k.off(mt, "mnt_node")
		if err != nil {
			return "", err
		}
		walkErr = k.rbInOrder(root.uint("mounts"), maxMounts, func(node uint64) { mounts = append(mounts, node-uint64(off)) })
		if walkErr != nil && len(mounts) == 0 {
			return "", walkErr
		}
	case k.has(nst, "list") && k.has(mt, "mnt_list"):
		off, err := k.off(mt, "mnt_list")
		if err != nil {
			return "", err
		}
		lo, err := k.off(nst, "list")
		if err != nil {
			return "", err
		}
		walkErr = k.list(ns+uint64(lo), maxMounts, func(node uint64) bool { mounts = append(mounts, node-uint64(off)); return true })
		if walkErr != nil && len(mounts) == 0 {
			return "", walkErr
		}
	default:
		return "", fmt.Errorf("the kernel's struct mnt_namespace has neither mounts (an rbtree) nor list")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-18s %-20s %-28s %s\n", "mount", "device", "mount point", "type")
	for _, m := range mounts {
		mo, err := k.object(m, mt, "mnt_devname", "mnt.mnt_sb")
		if err != nil {
			fmt.Fprintf(&b, "%#-18x (unreadable: %v)\n", m, err)
			continue
		}
		dev, _ := k.str(mo.uint("mnt_devname"), 256)
		fmt.Fprintf(&b, "%#-18x %-20s %-28s %s\n", m, dev, k.mountPoint(mt, dt, m), k.fsType(sbt, fst, mo.uint("mnt.mnt_sb")))
	}
	if walkErr != nil {
		fmt.Fprintf(&b, "(the list is cut short: %v)\n", walkErr)
	}
	return b.String(), nil
}

// mountPoint builds the path where mount m is mounted, as d_path does:
// up the dentries to the root of each mount, then on from where that
// mount is mounted in its parent.
func (k *kview) mountPoint(mt, dt *ctype, m uint64) string {
	mo, err := k.object(m, mt, "mnt_parent", "mnt_mountpoint")
	if err != nil {
		return "?"
	}
	mnt, d := mo.uint("mnt_parent"), mo.uint("mnt_mountpoint")
	if mnt == m {
		return "/"
	}
	var parts []string
	for i := 0; i < maxPathDepth; i++ {
		cur, err := k.object(mnt, mt, "mnt_parent", "mnt_mountpoint", "mnt.mnt_root")
		if err != nil {
			return "?"
		}
		if d == cur.uint("mnt.mnt_root") {
			if p := cur.uint("mnt_parent"); p != mnt && p != 0 {
				d, mnt = cur.uint("mnt_mountpoint"), p
				continue
			}
			break
		}
		de, err := k.object(d, dt, "d_parent", "d_name.name")
		if err != nil {
			return "?"
		}
		name, _ := k.str(de.uint("d_name.name"), 256)
		parts = append(parts, name)
		if de.uint("d_parent") == d {
			break
		}
		d = de.uint("d_parent")
	}
	var b strings.Builder
	for i := len(parts) - 1; i >= 0; i-- {
		b.WriteString("/" + parts[i])
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}

// fsType names a super block's file system type.
func (k *kview) fsType(st, ft *ctype, sb uint64) string {
	o, err := k.object(sb, st, "s_type")
	if err != nil {
		return "?"
	}
	f, err := k.object(o.uint("s_type"), ft, "name")
	if err != nil {
		return "?"
	}
	name, _ := k.str(f.uint("name"), 64)
	return name
}

// rbInOrder calls fn with each node of the rbtree whose root node is
// root, in order (struct rb_node: parent and colour, right, left), at
// most limit of them.
func (k *kview) rbInOrder(root uint64, limit int, fn func(node uint64)) error {
	nt, err := k.typ("rb_node")
	if err != nil {
		return err
	}
	var stack []uint64
	n, cur := 0, root
	for cur != 0 || len(stack) > 0 {
		for cur != 0 {
			if len(stack) > 64 {
				return fmt.Errorf("rbtree at %#x: deeper than 64", root)
			}
			stack = append(stack, cur)
			o, err := k.object(cur, nt, "rb_left")
			if err != nil {
				return err
			}
			cur = o.uint("rb_left")
		}
		cur, stack = stack[len(stack)-1], stack[:len(stack)-1]
		if n++; n > limit {
			return fmt.Errorf("rbtree at %#x: more than %d nodes", root, limit)
		}
		fn(cur)
		o, err := k.object(cur, nt, "rb_right")
		if err != nil {
			return err
		}
		cur = o.uint("rb_right")
	}
	return nil
}
