// Package vtscreen renders bytes as a VT100/xterm-style terminal would show
// them, for tests that check what a party sees: cursor movement (CSI A, B,
// C, D, H), line and screen erasure (CSI K, J), carriage return, backspace,
// tab and newline (with the terminal's usual CR on LF). 7-bit (ESC [) and
// 8-bit (U+009B) control sequence introducers are both interpreted, other
// escape sequences are swallowed as a terminal would, and SGR attributes
// are ignored. Every other rune takes one cell (no double-width or
// bidirectional layout).
package vtscreen

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Screen is a terminal screen of unbounded size.
type Screen struct {
	lines    [][]rune
	row, col int
}

// Render returns the screen after writing data to a fresh terminal, as its
// lines with trailing spaces removed.
func Render(data []byte) []string {
	var s Screen
	s.Write(data)
	return s.Lines()
}

// Lines returns the screen's lines, trailing spaces removed.
func (s *Screen) Lines() []string {
	out := make([]string, len(s.lines))
	for i, l := range s.lines {
		out[i] = strings.TrimRight(string(l), " ")
	}
	return out
}

// String returns the screen's lines joined by newlines.
func (s *Screen) String() string { return strings.Join(s.Lines(), "\n") }

func (s *Screen) line() []rune {
	for len(s.lines) <= s.row {
		s.lines = append(s.lines, nil)
	}
	return s.lines[s.row]
}

func (s *Screen) put(r rune) {
	l := s.line()
	for len(l) <= s.col {
		l = append(l, ' ')
	}
	l[s.col] = r
	s.lines[s.row] = l
	s.col++
}

// Write interprets data; it never fails.
func (s *Screen) Write(data []byte) (int, error) {
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		i += size
		switch {
		case r == '\n':
			s.row++
			s.col = 0
			s.line()
		case r == '\r':
			s.col = 0
		case r == '\b':
			s.col = max(s.col-1, 0)
		case r == '\t':
			s.col = (s.col/8 + 1) * 8
		case r == 0x1b && i < len(data) && data[i] == '[':
			i = s.csi(data, i+1)
		case r == 0x1b && i < len(data) && data[i] == ']': // OSC ... BEL or ST
			end := i
			for end < len(data) && data[end] != 0x07 && !(data[end] == 0x1b && end+1 < len(data) && data[end+1] == '\\') {
				end++
			}
			i = min(end+2, len(data))
			if end < len(data) && data[end] == 0x07 {
				i = end + 1
			}
		case r == 0x1b:
			if i < len(data) {
				i++ // a two-byte escape
			}
		case r == 0x9b:
			i = s.csi(data, i)
		case r < 0x20 || r == 0x7f || 0x80 <= r && r < 0xa0:
			// other controls do not print
		default:
			s.put(r)
		}
	}
	return len(data), nil
}

// csi interprets a control sequence whose parameters start at data[i] and
// returns the index after it.
func (s *Screen) csi(data []byte, i int) int {
	start := i
	for i < len(data) && (data[i] >= 0x30 && data[i] <= 0x3f || data[i] >= 0x20 && data[i] <= 0x2f) {
		i++
	}
	if i >= len(data) {
		return i
	}
	final := data[i]
	var params []int
	for _, p := range strings.Split(string(data[start:i]), ";") {
		n, err := strconv.Atoi(strings.TrimLeft(p, "?"))
		if err != nil {
			n = 0
		}
		params = append(params, n)
	}
	n := max(params[0], 1)
	switch final {
	case 'A':
		s.row = max(s.row-n, 0)
	case 'B':
		s.row += n
	case 'C':
		s.col += n
	case 'D':
		s.col = max(s.col-n, 0)
	case 'G':
		s.col = n - 1
	case 'H', 'f':
		s.row, s.col = n-1, 0
		if len(params) > 1 {
			s.col = max(params[1], 1) - 1
		}
	case 'K':
		l := s.line()
		switch params[0] {
		case 0:
			if s.col < len(l) {
				s.lines[s.row] = l[:s.col]
			}
		case 1:
			for j := 0; j <= s.col && j < len(l); j++ {
				l[j] = ' '
			}
		case 2:
			s.lines[s.row] = nil
		}
	case 'J':
		if params[0] == 2 || params[0] == 3 {
			s.lines = nil
		} else if params[0] == 0 {
			s.line()
			s.lines = s.lines[:s.row+1]
			if s.col < len(s.lines[s.row]) {
				s.lines[s.row] = s.lines[s.row][:s.col]
			}
		}
	}
	return i + 1
}
