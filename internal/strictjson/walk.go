package strictjson

import "fmt"

// Walker decodes one JSON value in a single pass over the bytes, with every
// check of [CheckDuplicates]: the caller walks the value with
// [Walker.Object] and [Walker.Array] and takes the raw bytes of the values it
// wants with [Walker.String], [Walker.Number] and [Walker.Skip]; whatever it
// leaves is scanned and checked all the same. Call [Walker.End] once the value
// has been walked: data is accepted only when every method returned nil and
// End does.
//
// A Walker hands back slices of data, never copies. Its first error sticks:
// a callback that drops an error still fails the walk.
type Walker struct {
	s     scanner
	depth int   // depth of the value at s.pos
	err   error // the first error, which every later call returns
}

// NewWalker returns a Walker over data.
func NewWalker(data []byte) Walker {
	return Walker{s: newScanner(data)}
}

// Kind returns the first byte of the next value ('{', '[', '"', 't', 'f',
// 'n', '-' or a digit), or 0 at the end of the input, without consuming it.
func (w *Walker) Kind() byte {
	w.s.ws()
	if w.s.pos >= len(w.s.data) {
		return 0
	}
	return w.s.data[w.s.pos]
}

// fail records err as the Walker's error if it is the first, and returns
// the Walker's error.
func (w *Walker) fail(err error) error {
	if w.err == nil {
		w.err = err
	}
	return w.err
}

// want checks that the next value starts with kind ('0' standing for any
// number) and is not nested too deep.
func (w *Walker) want(kind byte, what string) error {
	if w.err != nil {
		return w.err
	}
	if k := w.Kind(); k != kind && !(kind == '0' && (k == '-' || '0' <= k && k <= '9')) {
		if k == 0 {
			return w.fail(w.s.errorf("unexpected end of input (want %s)", what))
		}
		return w.fail(w.s.errorf("unexpected character %q (want %s)", k, what))
	}
	if w.depth > MaxDepth {
		return w.fail(fmt.Errorf("JSON nested deeper than %d at %s", MaxDepth, w.s.where()))
	}
	return nil
}

// Object consumes an object, calling field for each member with the raw
// bytes of its key (between the quotes, escapes not decoded) and whether
// they are plain (ASCII without escapes, so the raw bytes are the key). A key
// that repeats an earlier one, compared as [CheckDuplicates] compares keys,
// is an error before field is called. field may consume the member's value
// with one call of a Walker method; a value it leaves is scanned. An error
// from field stops the walk and is returned as is.
func (w *Walker) Object(field func(key []byte, plain bool) error) error {
	if err := w.want('{', "an object"); err != nil {
		return err
	}
	d := w.depth
	w.depth = d + 1
	err := w.s.object(d, func(key []byte, plain bool) error {
		if err := field(key, plain); err != nil {
			return err
		}
		return w.err
	})
	w.depth = d
	return w.fail(err)
}

// Array consumes an array, calling elem for each element with its index;
// elem may consume the element with one call of a Walker method, as in
// [Walker.Object].
func (w *Walker) Array(elem func(i int) error) error {
	if err := w.want('[', "an array"); err != nil {
		return err
	}
	d := w.depth
	w.depth = d + 1
	err := w.s.array(d, func(i int) error {
		if err := elem(i); err != nil {
			return err
		}
		return w.err
	})
	w.depth = d
	return w.fail(err)
}

// String consumes a string and returns its raw bytes between the quotes and
// whether they are plain (ASCII without escapes, so the raw bytes are the
// string's value).
func (w *Walker) String() (raw []byte, plain bool, err error) {
	if err := w.want('"', "a string"); err != nil {
		return nil, false, err
	}
	raw, plain, err = w.s.str()
	return raw, plain, w.fail(err)
}

// Number consumes a number and returns it as written.
func (w *Walker) Number() ([]byte, error) {
	if err := w.want('0', "a number"); err != nil {
		return nil, err
	}
	start := w.s.pos
	if err := w.s.number(); err != nil {
		return nil, w.fail(err)
	}
	return w.s.data[start:w.s.pos], nil
}

// Skip consumes any value and returns it as written (without the white
// space around it).
func (w *Walker) Skip() ([]byte, error) {
	if w.err != nil {
		return nil, w.err
	}
	w.s.ws()
	start := w.s.pos
	if err := w.s.value(w.depth); err != nil {
		return nil, w.fail(err)
	}
	return w.s.data[start:w.s.pos], nil
}

// End refuses anything but white space after the value.
func (w *Walker) End() error {
	if w.err != nil {
		return w.err
	}
	w.s.ws()
	if w.s.pos != len(w.s.data) {
		return errTrailing
	}
	return nil
}

// Offset returns the offset in the input of the next byte to read, after
// any white space.
func (w *Walker) Offset() int {
	w.s.ws()
	return w.s.pos
}
