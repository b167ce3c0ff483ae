package jobs

import (
	"bytes"
	"strings"
)

// YAML reports a mis-indented key where the mapping it breaks began
// ("line 5: did not find expected key" for a key on line 13 indented to a
// column no enclosing mapping uses). misindented finds that key: the
// first line from line from on whose indentation matches none of the
// block levels open above it. 0 when there is none.
func misindented(src []byte, from int) int {
	lines := bytes.Split(src, []byte("\n"))
	var open []int // indentation of the enclosing block levels
	scalar := -1   // indentation of a block scalar's key while inside it
	for i := max(from, 1) - 1; i < len(lines); i++ {
		line := strings.TrimRight(string(lines[i]), " \r")
		body := strings.TrimLeft(line, " ")
		if body == "" || strings.HasPrefix(body, "#") {
			continue
		}
		indent := len(line) - len(body)
		if scalar >= 0 {
			if indent > scalar {
				continue // a line of a | or > block
			}
			scalar = -1
		}
		switch {
		case len(open) == 0 || open[len(open)-1] < indent:
			open = append(open, indent) // a deeper level
		case open[len(open)-1] > indent:
			for len(open) > 0 && open[len(open)-1] > indent {
				open = open[:len(open)-1]
			}
			if len(open) > 0 && open[len(open)-1] != indent {
				return i + 1 // back out to a column no level uses
			}
			if len(open) == 0 {
				open = append(open, indent)
			}
		}
		// A list item's content is a level of its own: "- id: x" opens
		// the column of "id".
		for strings.HasPrefix(body, "- ") {
			rest := strings.TrimLeft(body[2:], " ")
			indent += len(body) - len(rest)
			body = rest
			open = append(open, indent)
		}
		v := strings.TrimSpace(body)
		if strings.HasSuffix(v, "|") || strings.HasSuffix(v, ">") || strings.HasSuffix(v, "|-") || strings.HasSuffix(v, ">-") {
			scalar = indent
		}
	}
	return 0
}
