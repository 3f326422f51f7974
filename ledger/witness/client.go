package witness

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// ConsistencyProver proves that the log's tree of size oldSize is a prefix
// of its tree of size newSize (RFC 6962 section 2.1.2, the proof tlog.ProveTree
// computes). The coordinator implements it over its log storage; for a
// [github.com/quorate-dev/quorate/ledger.Storage] it is
// ledger.ConsistencyProof. It is called with 0 < oldSize < newSize only.
type ConsistencyProver interface {
	ConsistencyProof(ctx context.Context, oldSize, newSize int64) (tlog.TreeProof, error)
}

// ProverFunc adapts a function to a [ConsistencyProver].
type ProverFunc func(ctx context.Context, oldSize, newSize int64) (tlog.TreeProof, error)

// ConsistencyProof calls f.
func (f ProverFunc) ConsistencyProof(ctx context.Context, oldSize, newSize int64) (tlog.TreeProof, error) {
	return f(ctx, oldSize, newSize)
}

// maxProofLines is the most consistency proof lines a request may carry
// (c2sp.org/tlog-witness).
const maxProofLines = 63

// maxResponse bounds what is read of a witness's answer.
const maxResponse = 16 << 10

// maxErrorBody bounds the part of an error answer kept in an [HTTPError].
const maxErrorBody = 200

// maxConflicts is how many 409 answers one submission follows by re-proving
// from the size the witness reports before giving up with a [ConflictError].
const maxConflicts = 2

// Client submits checkpoints to one witness over c2sp.org/tlog-witness and
// checks its cosignatures. It remembers, per log origin, the tree size the
// witness last cosigned, so that it sends the right old size and proof; it
// learns that size from a 409 Conflict when it does not know it (first
// contact, restart). Submissions through one Client are serialised (the
// protocol is sequential per log and witness). Safe for concurrent use.
type Client struct {
	v    *Verifier
	url  string
	http *http.Client

	mu    sync.Mutex       // serialises AddCheckpoint, guards known
	known map[string]int64 // origin -> size the witness has recorded
}

// ClientConfig configures a [Client].
type ClientConfig struct {
	// Witness is the witness's identity (from its vkey).
	Witness *Verifier
	// URL is the witness's submission prefix; add-checkpoint is POSTed to
	// URL + "/add-checkpoint".
	URL string
	// HTTPClient is used for requests; nil means a client with a 30s timeout.
	HTTPClient *http.Client
}

// NewClient returns a client for one witness.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.Witness == nil {
		return nil, fmt.Errorf("%w: no witness key", ErrBadVerifierKey)
	}
	if !strings.HasPrefix(cfg.URL, "http://") && !strings.HasPrefix(cfg.URL, "https://") {
		return nil, fmt.Errorf("witness %s: URL %q is not http:// or https://", cfg.Witness.name, cfg.URL)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return &Client{v: cfg.Witness, url: strings.TrimSuffix(cfg.URL, "/"), http: hc, known: map[string]int64{}}, nil
}

// Witness returns the witness's identity.
func (c *Client) Witness() *Verifier { return c.v }

// AddCheckpoint submits a signed checkpoint note to the witness with a
// consistency proof from the size the witness has recorded, and returns the
// witness's verified cosignature. On 409 Conflict it re-proves from the size
// the witness reports (at most maxConflicts times); a reported size larger
// than the checkpoint's, or the same size reported again, ends with a
// [ConflictError]. Other refusals are [HTTPError]s (422: the log was
// rewritten; 403/404: the witness does not trust this log key or origin);
// network failures wrap [ErrUnavailable]. The witness's answer must carry a
// valid cosignature by its key on exactly this checkpoint text, or the call
// fails with [ErrBadCosignature].
func (c *Client) AddCheckpoint(ctx context.Context, signed []byte, prover ConsistencyProver) (*Cosignature, error) {
	text, _, err := splitNote(signed)
	if err != nil {
		return nil, err
	}
	h, err := parseHeader(text)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.known[h.origin]
	if old > h.size {
		// We know the witness is past this checkpoint: it would refuse it.
		old = 0 // ask, and let the 409 say where it is
	}
	for conflicts := 0; ; {
		body, err := c.request(ctx, prover, old, h.size, signed)
		if err != nil {
			return nil, err
		}
		status, answer, err := c.post(ctx, body)
		if err != nil {
			return nil, err
		}
		switch status {
		case http.StatusOK:
			cs, err := c.checkAnswer(text, answer)
			if err != nil {
				return nil, err
			}
			c.known[h.origin] = h.size
			return cs, nil
		case http.StatusConflict:
			reported, perr := parseSize(answer)
			if perr != nil {
				return nil, fmt.Errorf("%w: witness %s answered 409 without a tree size: %w", ErrUnavailable, c.v.name, perr)
			}
			c.known[h.origin] = reported
			conflicts++
			if reported == old || reported > h.size || conflicts > maxConflicts {
				return nil, &ConflictError{Witness: c.v.name, Sent: old, WitnessSize: reported, Size: h.size}
			}
			old = reported
		default:
			return nil, &HTTPError{Witness: c.v.name, Status: status, Body: sanitize(answer)}
		}
	}
}

// request builds an add-checkpoint body: "old N", the proof lines, a blank
// line and the signed checkpoint.
func (c *Client) request(ctx context.Context, prover ConsistencyProver, old, size int64, signed []byte) ([]byte, error) {
	var proof tlog.TreeProof
	if old > 0 && old < size {
		if prover == nil {
			return nil, fmt.Errorf("%w: witness %s needs a proof from size %d to %d and no prover was given", ErrProver, c.v.name, old, size)
		}
		p, err := prover.ConsistencyProof(ctx, old, size)
		if err != nil {
			return nil, fmt.Errorf("%w: from size %d to %d for witness %s: %w", ErrProver, old, size, c.v.name, err)
		}
		if len(p) > maxProofLines {
			return nil, fmt.Errorf("%w: proof from size %d to %d has %d hashes (at most %d)", ErrProver, old, size, len(p), maxProofLines)
		}
		proof = p
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "old %d\n", old)
	for _, h := range proof {
		b.WriteString(base64.StdEncoding.EncodeToString(h[:]))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.Write(signed)
	return b.Bytes(), nil
}

// post sends body to add-checkpoint and returns the status and (bounded)
// answer.
func (c *Client) post(ctx context.Context, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url+"/add-checkpoint", bytes.NewReader(body))
	if err != nil {
		return 0, nil, fmt.Errorf("%w: witness %s: %w", ErrUnavailable, c.v.name, err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: witness %s at %s: %w", ErrUnavailable, c.v.name, c.url, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return 0, nil, fmt.Errorf("%w: witness %s: reading the answer: %w", ErrUnavailable, c.v.name, err)
	}
	if len(answer) > maxResponse {
		return 0, nil, fmt.Errorf("%w: witness %s: answer larger than %d bytes", ErrUnavailable, c.v.name, maxResponse)
	}
	return resp.StatusCode, answer, nil
}

// checkAnswer finds the witness's cosignature among the signature lines of
// a 200 answer. Lines by other keys are ignored, as the protocol says.
func (c *Client) checkAnswer(text, answer []byte) (*Cosignature, error) {
	lines, err := parseSigLines(answer)
	if err != nil {
		return nil, fmt.Errorf("%w: witness %s answered 200 with no signature lines: %w", ErrBadCosignature, c.v.name, err)
	}
	cs, err := verifyCosignatures(c.v, text, lines)
	if err != nil {
		return nil, err
	}
	if cs == nil {
		return nil, fmt.Errorf("%w: witness %s answered 200 without a cosignature by its key %s+%08x", ErrBadCosignature, c.v.name, c.v.name, c.v.hash)
	}
	return cs, nil
}

// parseSize reads a text/x.tlog.size body: a decimal size and a newline.
func parseSize(b []byte) (int64, error) {
	s, ok := strings.CutSuffix(string(b), "\n")
	if !ok {
		return 0, errors.New("no final newline")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != s {
		return 0, fmt.Errorf("%q is not a tree size", truncate(s))
	}
	return n, nil
}

// sanitize keeps the start of an error answer, printable.
func sanitize(b []byte) string {
	if len(b) > maxErrorBody {
		b = b[:maxErrorBody]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.TrimSpace(string(b)))
}

// Submission is the outcome of [Submit]: the cosignatures that came back and
// what went wrong with each witness that did not cosign.
type Submission struct {
	// Note is the signed checkpoint with the new cosignatures appended.
	Note []byte
	// Cosignatures are the verified cosignatures, in the clients' order.
	Cosignatures []Cosignature
	// Errors maps a witness name to why it did not cosign.
	Errors map[string]error
	// Latency maps a witness name to how long its submission took.
	Latency map[string]time.Duration
}

// Submit sends the signed checkpoint to every witness concurrently and
// collects the cosignatures. A witness that fails delays only its own
// cosignature: Submit returns when every client has answered or failed
// (bound each with ctx or the HTTP client's timeout), and never fails as a
// whole; check the result with [Quorum.Verify] on Note.
func Submit(ctx context.Context, signed []byte, prover ConsistencyProver, clients ...*Client) *Submission {
	type outcome struct {
		cs   *Cosignature
		err  error
		took time.Duration
	}
	outs := make([]outcome, len(clients))
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			start := time.Now()
			cs, err := c.AddCheckpoint(ctx, signed, prover)
			outs[i] = outcome{cs, err, time.Since(start)}
		})
	}
	wg.Wait()
	s := &Submission{Errors: map[string]error{}, Latency: map[string]time.Duration{}}
	for i, o := range outs {
		name := clients[i].v.name
		s.Latency[name] = o.took
		if o.err != nil {
			s.Errors[name] = o.err
			continue
		}
		s.Cosignatures = append(s.Cosignatures, *o.cs)
	}
	s.Note = AddCosignatures(signed, s.Cosignatures...)
	return s
}
