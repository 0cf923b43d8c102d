package session

import "strings"

// logPart is a piece of a logpoint's message: text as it is, or an
// {expression} to evaluate at each hit.
type logPart struct {
	text string
	expr bool
}

// logParts splits a logpoint's message into text and {expressions}. A
// brace that is text is written \{ or \} (lldb-dap's escape), or {{ and
// }} (Python's and C#'s); a { with no } after it is text too.
func logParts(msg string) []logPart {
	var parts []logPart
	var text strings.Builder
	for i := 0; i < len(msg); i++ {
		c := msg[i]
		switch {
		case c == '\\' && i+1 < len(msg) && (msg[i+1] == '{' || msg[i+1] == '}'),
			(c == '{' || c == '}') && i+1 < len(msg) && msg[i+1] == c:
			text.WriteByte(msg[i+1])
			i++
		case c == '{':
			j := strings.IndexByte(msg[i:], '}')
			if j < 0 {
				text.WriteString(msg[i:])
				i = len(msg)
				break
			}
			if text.Len() > 0 {
				parts = append(parts, logPart{text: text.String()})
				text.Reset()
			}
			parts = append(parts, logPart{text: msg[i+1 : i+j], expr: true})
			i += j
		default:
			text.WriteByte(c)
		}
	}
	if text.Len() > 0 {
		parts = append(parts, logPart{text: text.String()})
	}
	return parts
}
