package attest

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/quorate-dev/quorate/internal/strictjson"
)

// The fast decoders below read the envelope and the statement in one pass
// with a [strictjson.Walker], which applies every check of
// strictjson.CheckDuplicates as it goes. They handle the plain shape that
// quorate and other DSSE tools write: ASCII keys and string values without
// escapes, values of the expected JSON types. Anything else (an unknown or
// escaped key, an escaped string, a null, a wrong type, invalid JSON, a
// duplicate key) makes them give up, and the caller decodes the input again
// with the general path (strictjson and encoding/json), which produces the
// same values and the error messages. So a fast decoder only ever accepts
// input that the general path accepts, into the same values; the
// differential tests and FuzzFastDecoders hold them to that.

// errSlow stops a fast decoder: the input needs the general path.
var errSlow = errors.New("attest: not on the fast path")

// fieldIs reports whether a plain key names the field whose JSON name is
// name, as encoding/json matches a key to a field: exactly or without regard
// to ASCII case. (Keys that are not plain ASCII, which Unicode folding could
// match to a field, never get here.)
func fieldIs(key []byte, name string) bool {
	if len(key) != len(name) {
		return false
	}
	for i := range len(key) {
		x, y := key[i], name[i]
		if x == y {
			continue
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// plainString reads a string value without escapes.
func plainString(w *strictjson.Walker) (string, error) {
	raw, err := plainBytes(w)
	return string(raw), err
}

func plainBytes(w *strictjson.Walker) ([]byte, error) {
	if w.Kind() != '"' {
		return nil, errSlow
	}
	raw, plain, err := w.String()
	if err != nil {
		return nil, err
	}
	if !plain {
		return nil, errSlow
	}
	return raw, nil
}

// object walks an object whose keys are all plain, calling field with each
// key; field may consume the value, as with [strictjson.Walker.Object].
func object(w *strictjson.Walker, field func(key []byte) error) error {
	if w.Kind() != '{' {
		return errSlow
	}
	return w.Object(func(key []byte, plain bool) error {
		if !plain {
			return errSlow
		}
		return field(key)
	})
}

// arrayOf walks an array, calling elem for each element, which it must
// consume.
func arrayOf(w *strictjson.Walker, elem func() error) error {
	if w.Kind() != '[' {
		return errSlow
	}
	return w.Array(func(int) error { return elem() })
}

// decodeEnvelope is the fast path of [ParseEnvelope]: it returns the
// envelope and the raw bytes of its payload (which equal env.Payload), or
// ok false.
func decodeEnvelope(data []byte) (env *Envelope, payload []byte, ok bool) {
	env = new(Envelope)
	w := strictjson.NewWalker(data)
	err := object(&w, func(key []byte) error {
		var err error
		switch {
		case fieldIs(key, "payloadType"):
			env.PayloadType, err = plainString(&w)
		case fieldIs(key, "payload"):
			if payload, err = plainBytes(&w); err == nil {
				env.Payload = string(payload)
			}
		case fieldIs(key, "signatures"):
			env.Signatures, err = decodeSignatures(&w)
		default:
			return errSlow // an unknown field, which the general path refuses
		}
		return err
	})
	if err != nil || w.End() != nil {
		return nil, nil, false
	}
	return env, payload, true
}

func decodeSignatures(w *strictjson.Walker) ([]Signature, error) {
	var buf [8]Signature
	sigs := buf[:0]
	err := arrayOf(w, func() error {
		var s Signature
		err := object(w, func(key []byte) error {
			var err error
			switch {
			case fieldIs(key, "keyid"):
				s.KeyID, err = plainString(w)
			case fieldIs(key, "sig"):
				s.Sig, err = plainString(w)
			default:
				return errSlow
			}
			return err
		})
		sigs = append(sigs, s)
		return err
	})
	if err != nil {
		return nil, err
	}
	// encoding/json makes an empty, non-nil slice of "[]".
	return append(make([]Signature, 0, len(sigs)), sigs...), nil
}

// decodeStatement is the fast path of [ParseStatement]'s decoding: the
// statement as encoding/json decodes it (unknown fields ignored) and its
// predicate as strictjson.Unmarshal decodes it (unknown fields refused), or
// ok false.
func decodeStatement(data []byte) (st *Statement, p *Predicate, ok bool) {
	st = new(Statement)
	w := strictjson.NewWalker(data)
	err := object(&w, func(key []byte) error {
		var err error
		switch {
		case fieldIs(key, "_type"):
			st.Type, err = plainString(&w)
		case fieldIs(key, "predicateType"):
			st.PredicateType, err = plainString(&w)
		case fieldIs(key, "subject"):
			st.Subject, err = decodeSubjects(&w)
		case fieldIs(key, "predicate"):
			if w.Kind() != '{' {
				return errSlow
			}
			start := w.Offset()
			p = new(Predicate)
			if err = decodePredicate(&w, p); err == nil {
				st.Predicate = clone(data[start:w.Offset()])
			}
		}
		return err // an unknown field is skipped, as encoding/json does
	})
	if err != nil || w.End() != nil || p == nil {
		return nil, nil, false
	}
	return st, p, true
}

func clone(b []byte) json.RawMessage { return append(json.RawMessage(nil), b...) }

func decodeSubjects(w *strictjson.Walker) ([]Subject, error) {
	subjects := []Subject{}
	err := arrayOf(w, func() error {
		var s Subject
		err := object(w, func(key []byte) error {
			var err error
			switch {
			case fieldIs(key, "name"):
				s.Name, err = plainString(w)
			case fieldIs(key, "digest"):
				s.Digest, err = decodeStringMap(w)
			}
			return err // unknown fields are skipped
		})
		subjects = append(subjects, s)
		return err
	})
	return subjects, err
}

// decodeStringMap reads an object of plain strings into a new map (not nil
// even when the object is empty, as encoding/json makes it).
func decodeStringMap(w *strictjson.Walker) (map[string]string, error) {
	m := make(map[string]string, 2)
	err := object(w, func(key []byte) error {
		v, err := plainString(w)
		m[string(key)] = v
		return err
	})
	return m, err
}

func decodePredicate(w *strictjson.Walker, p *Predicate) error {
	return object(w, func(key []byte) error {
		var err error
		switch {
		case fieldIs(key, "gate"):
			p.Gate, err = plainString(w)
		case fieldIs(key, "requestId"):
			p.RequestID, err = plainString(w)
		case fieldIs(key, "created"):
			err = decodeTime(w, &p.Created)
		case fieldIs(key, "expires"):
			err = decodeTime(w, &p.Expires)
		case fieldIs(key, "policy"):
			err = decodePolicyRef(w, &p.Policy)
		case fieldIs(key, "provenance"):
			p.Provenance, err = decodeProvenance(w)
		default:
			return errSlow // an unknown field, which the general path refuses
		}
		return err
	})
}

// decodeTime hands the string as written to time.Time's UnmarshalJSON, as
// encoding/json does.
func decodeTime(w *strictjson.Walker, t *time.Time) error {
	if w.Kind() != '"' {
		return errSlow
	}
	raw, err := w.Skip()
	if err != nil {
		return err
	}
	if t.UnmarshalJSON(raw) != nil {
		return errSlow
	}
	return nil
}

func decodePolicyRef(w *strictjson.Walker, r *PolicyRef) error {
	return object(w, func(key []byte) error {
		var err error
		switch {
		case fieldIs(key, "version"):
			if k := w.Kind(); k != '-' && (k < '0' || k > '9') {
				return errSlow
			}
			var num []byte
			if num, err = w.Number(); err == nil {
				// As encoding/json: a number that is not an int64 is an error.
				if r.Version, err = strconv.ParseInt(string(num), 10, 64); err != nil {
					return errSlow
				}
			}
		case fieldIs(key, "digest"):
			r.Digest, err = decodeStringMap(w)
		default:
			return errSlow
		}
		return err
	})
}

func decodeProvenance(w *strictjson.Walker) (*Provenance, error) {
	pv := new(Provenance)
	err := object(w, func(key []byte) error {
		var err error
		switch {
		case fieldIs(key, "predicateType"):
			pv.PredicateType, err = plainString(w)
		case fieldIs(key, "uri"):
			pv.URI, err = plainString(w)
		case fieldIs(key, "digest"):
			pv.Digest, err = decodeStringMap(w)
		case fieldIs(key, "predicate"):
			var raw []byte
			if raw, err = w.Skip(); err == nil {
				pv.Predicate = clone(raw) // any JSON value, as written
			}
		default:
			return errSlow
		}
		return err
	})
	return pv, err
}

// base64Encodings are the encodings [DecodeBase64] accepts.
var base64Encodings = [...]*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding}

// likelyBase64 returns the encoding to try first for src: standard base64
// (which DSSE specifies), padded if src ends in '='.
//
// Decoding with it, when it succeeds, gives what trying each encoding in
// turn gives, because no two of them accept a string and decode it
// differently: a string that both alphabets accept uses only the letters and
// digits they share, and one that an encoding accepts both with and without
// padding has no '=' (so decodes the same). When it fails, the caller tries
// every encoding, so a wrong guess costs time, never a result.
func likelyBase64[S string | []byte](src S) *base64.Encoding {
	if len(src) > 0 && src[len(src)-1] == '=' {
		return base64.StdEncoding
	}
	return base64.RawStdEncoding
}

// decodeBase64Bytes is [DecodeBase64] of string(src), without the copy.
func decodeBase64Bytes(src []byte) ([]byte, error) {
	enc := likelyBase64(src)
	dst := make([]byte, enc.DecodedLen(len(src)))
	if n, err := enc.Decode(dst, src); err == nil {
		return dst[:n], nil
	}
	return DecodeBase64(string(src))
}
