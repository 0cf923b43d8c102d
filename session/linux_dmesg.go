package session

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// The kernel log: the printk ring buffer of Linux 5.10 and later
// (kernel/printk/printk_ringbuffer.h), decoded as scripts/gdb's lx-dmesg
// does. prb points at a struct printk_ringbuffer: a descriptor ring
// (struct prb_desc: a state word whose top two bits are the state and the
// rest the descriptor's id, and the logical positions of the record's
// text), a parallel array of struct printk_info (sequence number,
// timestamp, text length) and a text data ring of blocks, each the
// descriptor's id followed by the text. Records run from tail_id to
// head_id; consecutive ids have consecutive sequence numbers.

// Descriptor states (enum desc_state: reserved, committed, finalized,
// reusable), in the top two bits of state_var.
const (
	descCommitted = 1
	descFinalized = 2
	descReusable  = 3
	descStateBits = 2
)

// logRecord is one kernel log record.
type logRecord struct {
	seq   uint64
	ts    uint64 // nanoseconds since boot
	level int
	text  string
}

// String renders a record as dmesg does: one line per line of text, each
// with the timestamp.
func (r logRecord) String() string {
	var b strings.Builder
	stamp := fmt.Sprintf("[%5d.%06d] ", r.ts/1e9, r.ts%1e9/1e3)
	for _, line := range strings.Split(strings.TrimRight(r.text, "\n"), "\n") {
		b.WriteString(stamp)
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// dmesgState remembers what the stops have printed.
type dmesgState struct {
	next uint64 // the sequence number of the first record not printed yet
}

// printkRing is the ring buffer's layout and where it is.
type printkRing struct {
	k                  *kview
	descT, infoT       *ctype
	descs, infos, data uint64
	count, dataSize    uint64
	head, tail         uint64 // descriptor ids
	idMask             uint64
	textOff            int64 // of the text in a data block (after its id)
}

// openLog reads the ring buffer's header.
func (k *kview) openLog() (*printkRing, error) {
	p, err := k.sym("prb")
	if err != nil {
		return nil, fmt.Errorf("no printk ring buffer (Linux 5.10 or later has prb): %w", err)
	}
	rbAddr, err := k.u64(p)
	if err != nil {
		return nil, fmt.Errorf("reading prb: %w", err)
	}
	rbT, err := k.typ("printk_ringbuffer")
	if err != nil {
		return nil, err
	}
	r := &printkRing{k: k}
	if r.descT, err = k.typ("prb_desc"); err != nil {
		return nil, err
	}
	if r.infoT, err = k.typ("printk_info"); err != nil {
		return nil, err
	}
	if blk, err := k.typ("prb_data_block"); err == nil {
		r.textOff, _ = k.off(blk, "data")
	} else {
		r.textOff = 8 // unsigned long id
	}
	rb, err := k.object(rbAddr, rbT, "desc_ring.count_bits", "desc_ring.descs", "desc_ring.infos",
		"desc_ring.head_id.counter", "desc_ring.tail_id.counter", "text_data_ring.size_bits", "text_data_ring.data")
	if err != nil {
		return nil, err
	}
	cb, sb := rb.uint("desc_ring.count_bits"), rb.uint("text_data_ring.size_bits")
	if cb == 0 || cb > 30 || sb == 0 || sb > 30 {
		return nil, fmt.Errorf("the printk ring buffer at %#x is not set up (count_bits %d, size_bits %d)", rbAddr, cb, sb)
	}
	r.count, r.dataSize = 1<<cb, 1<<sb
	r.descs, r.infos, r.data = rb.uint("desc_ring.descs"), rb.uint("desc_ring.infos"), rb.uint("text_data_ring.data")
	r.idMask = ^uint64(0) >> descStateBits
	r.head, r.tail = rb.uint("desc_ring.head_id.counter")&r.idMask, rb.uint("desc_ring.tail_id.counter")&r.idMask
	return r, nil
}

// records reads the records with sequence numbers from from on, at most
// max of the newest (0: all), and of those only the newest whose text
// fits in maxBytes (0: no bound; left says how many older ones it left
// out): only their part of the text ring is read. A record still being
// written ends the walk (it and the later ones come at the next read).
func (r *printkRing) records(from uint64, max, maxBytes int) (recs []logRecord, left int, err error) {
	k := r.k
	n := (r.head-r.tail)&r.idMask + 1
	if n > r.count {
		n = r.count
	}
	// The head's sequence number tells how many are new.
	headInfo, err := k.read(r.infos+(r.head%r.count)*uint64(r.infoT.size), int(r.infoT.size))
	if err != nil {
		return nil, 0, fmt.Errorf("reading the newest record's info: %w", err)
	}
	seqOff, _ := k.off(r.infoT, "seq")
	headSeq := binary.LittleEndian.Uint64(headInfo[seqOff:])
	if headSeq < from {
		return nil, 0, nil
	}
	if want := headSeq - from + 1; want < n {
		n = want
	}
	if max > 0 && uint64(max) < n {
		n = uint64(max)
	}
	first := (r.head - (n - 1)) & r.idMask
	descs, err := r.span(r.descs, uint64(r.descT.size), first, n)
	if err != nil {
		return nil, 0, fmt.Errorf("reading the descriptors: %w", err)
	}
	infos, err := r.span(r.infos, uint64(r.infoT.size), first, n)
	if err != nil {
		return nil, 0, fmt.Errorf("reading the records' infos: %w", err)
	}
	dsz, isz := uint64(r.descT.size), uint64(r.infoT.size)
	if maxBytes > 0 {
		// The newest records whose lines (text and a timestamp each)
		// fit.
		lenOff, _ := k.off(r.infoT, "text_len")
		total, keep := 0, uint64(0)
		for ; keep < n; keep++ {
			i := n - 1 - keep
			total += int(binary.LittleEndian.Uint16(infos[i*isz+uint64(lenOff):])) + 16
			if total > maxBytes {
				break
			}
		}
		if keep < n {
			left = int(n - keep)
			first = (first + n - keep) & r.idMask
			descs, infos = descs[(n-keep)*dsz:], infos[(n-keep)*isz:]
			n = keep
		}
	}
	var ring []byte // the text ring's part the records are in, for many records
	if n > 32 {
		if ring, err = r.ringPart(descs, n); err != nil {
			return nil, left, fmt.Errorf("reading the text ring: %w", err)
		}
	}
	var out []logRecord
	for i := uint64(0); i < n; i++ {
		id := (first + i) & r.idMask
		d := &obj{t: r.descT, b: descs[i*uint64(r.descT.size) : (i+1)*uint64(r.descT.size)]}
		sv := d.uint("state_var.counter")
		state := sv >> (64 - descStateBits)
		if sv&r.idMask != id || state != descCommitted && state != descFinalized {
			if len(out) > 0 && state != descReusable {
				break // being written: the rest later
			}
			continue
		}
		in := &obj{t: r.infoT, b: infos[i*uint64(r.infoT.size) : (i+1)*uint64(r.infoT.size)]}
		rec := logRecord{seq: in.uint("seq"), ts: in.uint("ts_nsec"), level: int(in.uint("level"))}
		if rec.seq < from {
			continue
		}
		var ok bool
		if rec.text, ok, err = r.text(ring, d.uint("text_blk_lpos.begin"), d.uint("text_blk_lpos.next"), int(in.uint("text_len"))); err != nil {
			return out, left, err
		}
		if ok {
			out = append(out, rec)
		}
	}
	return out, left, nil
}

// ringPart returns a buffer the size of the text ring that holds the
// blocks of n records (their descriptors): from the first one's logical
// position to the last one's end, wrapping, and nothing else read.
func (r *printkRing) ringPart(descs []byte, n uint64) ([]byte, error) {
	dsz := uint64(r.descT.size)
	var lo, hi uint64
	found := false
	for i := uint64(0); i < n; i++ {
		d := &obj{t: r.descT, b: descs[i*dsz : (i+1)*dsz]}
		b, e := d.uint("text_blk_lpos.begin"), d.uint("text_blk_lpos.next")
		if b&1 != 0 || e <= b {
			continue // no data, or not a block
		}
		if !found || b < lo {
			lo = b
		}
		hi, found = max(hi, e), true
	}
	if !found || hi-lo >= r.dataSize {
		return r.k.read(r.data, int(r.dataSize))
	}
	ring := make([]byte, r.dataSize)
	start, size := lo%r.dataSize, hi-lo
	first := min(size, r.dataSize-start)
	part, err := r.k.read(r.data+start, int(first))
	if err != nil {
		return nil, err
	}
	copy(ring[start:], part)
	if size > first { // wrapped: the rest is at the ring's start
		if part, err = r.k.read(r.data, int(size-first)); err != nil {
			return nil, err
		}
		copy(ring, part)
	}
	return ring, nil
}

// span reads n elements of size sz of a ring array from id first on (the
// ring wraps at count).
func (r *printkRing) span(base, sz, first, n uint64) ([]byte, error) {
	idx := first % r.count
	if idx+n <= r.count {
		return r.k.read(base+idx*sz, int(n*sz))
	}
	a, err := r.k.read(base+idx*sz, int((r.count-idx)*sz))
	if err != nil {
		return nil, err
	}
	b, err := r.k.read(base, int((n-(r.count-idx))*sz))
	return append(a, b...), err
}

// The logical positions of a record without a data block
// (kernel/printk/printk_ringbuffer.c): NO_LPOS for an empty line, which
// is a record; FAILED_LPOS for one whose data was lost, which readers
// skip.
const noLPOS = 0x3

// text reads a record's text from its data block's logical positions, as
// the kernel's get_data and copy_data do; ok is false for a record the
// kernel skips (prb_read_valid): its data lost (FAILED_LPOS) or a block
// too short for its text.
func (r *printkRing) text(ring []byte, begin, next uint64, n int) (text string, ok bool, err error) {
	if begin&1 != 0 {
		return "", begin == noLPOS && next == noLPOS, nil
	}
	if n == 0 {
		return "", true, nil
	}
	b, e := begin%r.dataSize, next%r.dataSize
	if b > e {
		b = 0 // the block wrapped: it is at the start of the ring
	}
	start := b + uint64(r.textOff)
	if e < start || uint64(n) > e-start {
		return "", false, nil
	}
	if ring != nil {
		return string(ring[start : start+uint64(n)]), true, nil
	}
	t, err := r.k.read(r.data+start, n)
	return string(t), err == nil, err
}

// Dmesg returns the kernel log, or its last n records (n > 0), as dmesg
// prints it.
func (s *Session) dmesg(v int, n int) (string, error) {
	if !s.isLinux() {
		return "", errNotLinux
	}
	k := s.kview(v)
	r, err := k.openLog()
	if err != nil {
		return "", err
	}
	recs, left, err := r.records(0, n, maxConsoleOutput-200)
	var b strings.Builder
	if left > 0 {
		fmt.Fprintf(&b, "(vmdap: %d earlier records left out, the console shows at most %d bytes; dmesg N shows the last N records)\n", left, maxConsoleOutput)
	}
	for _, rec := range recs {
		b.WriteString(rec.String())
	}
	if err != nil {
		fmt.Fprintf(&b, "(the log is cut short: %v)\n", err)
	}
	if len(recs) == 0 && err == nil {
		b.WriteString("(the kernel log is empty)\n")
	}
	return boundOutput(b.String(), true, "dmesg N shows the last N records"), nil
}

// dmesgCommand runs "dmesg [N]".
func (s *Session) dmesgCommand(v int, args string) (string, error) {
	n := 0
	if a := strings.TrimSpace(args); a != "" {
		var err error
		if n, err = strconv.Atoi(a); err != nil || n <= 0 {
			return "", fmt.Errorf("dmesg: %q is not a record count (dmesg, or dmesg N for the last N records)", a)
		}
	}
	return s.dmesg(v, n)
}

// printNewLog prints the records written since the last stop, as output
// events.
func (s *Session) printNewLog(k *kview) {
	r, err := k.openLog()
	if err != nil {
		return // not set up yet (early boot)
	}
	recs, left, err := r.records(s.linux.log.next, 0, maxConsoleOutput-200)
	if err != nil {
		s.log.WithError(err).Debug("reading the kernel log")
	}
	if len(recs) == 0 {
		return
	}
	var b strings.Builder
	if left > 0 {
		fmt.Fprintf(&b, "(vmdap: %d earlier records left out; the console's dmesg shows the whole log)\n", left)
	}
	for _, rec := range recs {
		b.WriteString(rec.String())
	}
	s.linux.log.next = recs[len(recs)-1].seq + 1
	s.emit(Output{Kind: OutNote, Text: boundOutput(b.String(), true, "the console's dmesg shows the whole log")})
}
