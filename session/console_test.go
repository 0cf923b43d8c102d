package session

import (
	"fmt"
	"strings"
	"testing"
)

// TestBoundOutput: a console answer (a whole kernel log, the task list of
// a big machine) is cut to maxConsoleOutput bytes at a line boundary,
// keeping its start, or its end for a log (the newest records), with a
// line saying how many lines were left out and how to see them; a
// shorter one is left as it is.
func TestBoundOutput(t *testing.T) {
	var b strings.Builder
	n := 0
	for b.Len() < 3*maxConsoleOutput {
		fmt.Fprintf(&b, "[%8d] line %d of a long log\n", n, n)
		n++
	}
	text := b.String()
	if got := boundOutput("short\n", true, "x"); got != "short\n" {
		t.Fatalf("a short text: %q", got)
	}
	end := boundOutput(text, true, "dmesg N shows the last N records")
	if len(end) > maxConsoleOutput || !strings.HasSuffix(end, fmt.Sprintf("line %d of a long log\n", n-1)) {
		t.Fatalf("the end kept: %d bytes, ends %q", len(end), end[len(end)-40:])
	}
	first, rest, _ := strings.Cut(end, "\n")
	kept := strings.Count(rest, "\n")
	if want := fmt.Sprintf("(vmdap: %d earlier lines left out, the console shows at most %d bytes; dmesg N shows the last N records)", n-kept, maxConsoleOutput); first != want {
		t.Fatalf("the note: %q, want %q", first, want)
	}
	if !strings.HasPrefix(rest, fmt.Sprintf("[%8d] line %d", n-kept, n-kept)) {
		t.Fatalf("the first line kept is not whole: %q", rest[:40])
	}
	start := boundOutput(text, false, "")
	if len(start) > maxConsoleOutput || !strings.HasPrefix(start, text[:100]) {
		t.Fatalf("the start kept: %d bytes", len(start))
	}
	body := start[:strings.LastIndex(start[:len(start)-1], "\n")+1]
	if lines := strings.Count(body, "\n"); !strings.HasSuffix(start, fmt.Sprintf("(vmdap: %d more lines left out, the console shows at most %d bytes)\n", n-lines, maxConsoleOutput)) {
		t.Fatalf("the note at the end: %q", start[len(start)-120:])
	}
}
