package timestamp

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/quorate-dev/quorate/ledger"
)

// CheckpointDigest is the imprint a TSA timestamps for a checkpoint:
// SHA-256 of its note text ([ledger.Checkpoint.Text], without signature
// lines).
func CheckpointDigest(text []byte) [sha256.Size]byte { return sha256.Sum256(text) }

// Evidence is the independent-time evidence for a checkpoint: its text and
// the tokens TSAs issued over [CheckpointDigest] of it. A bundle carries it
// with, for each entry, an inclusion proof in that checkpoint's tree
// ([ledger.InclusionProof] at the checkpoint's size).
type Evidence struct {
	// Checkpoint is the checkpoint's note text, as timestamped.
	Checkpoint string `json:"checkpoint"`
	// Tokens are the TimeStampTokens, DER (base64 in JSON).
	Tokens [][]byte `json:"tokens"`
}

// StampCheckpoint asks every client for a token over cp's text (see
// [TimestampAll]) and returns the evidence with the tokens obtained, and
// the failures joined. The evidence is nil only when no TSA answered.
func StampCheckpoint(ctx context.Context, clients []*Client, cp *ledger.Checkpoint) (*Evidence, error) {
	text, err := cp.Text()
	if err != nil {
		return nil, fmt.Errorf("timestamp: %w", err)
	}
	toks, err := TimestampAll(ctx, clients, CheckpointDigest(text))
	if len(toks) == 0 {
		return nil, fmt.Errorf("timestamp: no TSA timestamped checkpoint %d: %w", cp.Size, err)
	}
	ev := &Evidence{Checkpoint: string(text)}
	for _, t := range toks {
		ev.Tokens = append(ev.Tokens, t.DER)
	}
	return ev, err
}

// Marshal returns the evidence as JSON.
func (e *Evidence) Marshal() ([]byte, error) { return json.Marshal(e) }

// VerifyEntry checks that the evidence gives the log entry (its bytes, at
// index) an independent time: the timestamped checkpoint is one of the
// log with this origin ([ledger.ParseCheckpoint], strict), proof shows the
// entry at index in its tree ([ledger.VerifyInclusion]), and the tokens
// over [CheckpointDigest] of its text reach the trust's quorum
// ([Trust.Verify]). Result.Time is then a trusted upper bound on when the
// entry existed. The log's signature on the checkpoint is not needed for
// that (the text commits to the tree; the tokens to the text) and is not
// checked here: that the entry belongs to the log proper is
// [ledger.VerifyBundle]'s job.
func (t *Trust) VerifyEntry(ev *Evidence, origin string, index int64, entry []byte, proof tlog.RecordProof) (*Result, error) {
	if ev == nil {
		return nil, fmt.Errorf("%w: no evidence", ErrEvidence)
	}
	cp, err := ledger.ParseCheckpoint([]byte(ev.Checkpoint))
	if err != nil {
		return nil, fmt.Errorf("%w: timestamped checkpoint: %w", ErrEvidence, err)
	}
	if cp.Origin != origin {
		return nil, fmt.Errorf("%w: timestamped checkpoint is for log %q, want %q", ErrEvidence, cp.Origin, origin)
	}
	if err := ledger.VerifyInclusion(proof, index, cp.Size, cp.Root, entry); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEvidence, err)
	}
	return t.Verify(CheckpointDigest([]byte(ev.Checkpoint)), ev.Tokens)
}
