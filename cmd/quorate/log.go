package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/quorate-dev/quorate/internal/atomicfile"
	"github.com/quorate-dev/quorate/internal/display"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
	"github.com/quorate-dev/quorate/signer/client"
)

func (a *app) policyLogKey() *cobra.Command {
	var dir, key, origin string
	var exp time.Duration
	c := &cobra.Command{
		Use:   "log-key --trust DIR --key PUBFILE --origin NAME",
		Short: "Name the transparency log's public key and origin in the policy",
		Long: `Name the coordinator's transparency-log key (ECDSA P-256 or Ed25519) and the
log's origin (e.g. quorate.example.com/log) in a new policy version. Verifiers
learn the log key from the signed policy, never from the coordinator, so
rotating it is a policy change like any other: then run 'quorate policy sign'.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if key == "" || origin == "" {
				return usageErr("--key PUBFILE and --origin NAME are required")
			}
			ks, err := a.readPublicKeys(cmd, []string{key})
			if err != nil {
				return err
			}
			return a.editDraft(dir, func(d *author.Draft) error { return d.SetLogKey(ks[0], origin, exp) })
		},
	}
	c.Flags().StringVar(&dir, "trust", "", "trust directory")
	c.Flags().StringVar(&key, "key", "", "log public key file or key URI")
	c.Flags().StringVar(&origin, "origin", "", "log origin (first line of every checkpoint)")
	c.Flags().DurationVar(&exp, "policy-expires", author.DefaultTargetsExpiry, "lifetime of the new policy version")
	return c
}

func (a *app) logCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "log",
		Short: "Audit and inspect the coordinator's transparency log",
		Long: `Every event of the coordinator (request opened, partial signature accepted,
composite emitted, request cancelled or expired, ...) is an entry of an
append-only Merkle log whose checkpoints the log key signs. 'quorate log
verify' audits the whole log against the log key in your trust directory and
against the checkpoint it saw last time, so a rewritten or forked history is
detected.`,
	}
	cmd.AddCommand(a.logVerify(), a.logShow(), a.logProof(), a.logKeyCommand())
	return cmd
}

func (a *app) logKeyCommand() *cobra.Command {
	var dir, output string
	c := &cobra.Command{
		Use:   "key --trust DIR",
		Short: "Print the log's C2SP verifier key (vkey) from the trust directory",
		Long: `Print the verifier key of the transparency log the verified policy names, in
the C2SP signed-note format (NAME+HASH+BASE64: the log's origin, the key hash,
the signature type byte and the public key), one line on stdout. Tools that
check checkpoints take it as is: Go's golang.org/x/mod/sumdb/note
(note.NewVerifier, then note.Open) for an Ed25519 log key (type 0x01); an
ECDSA P-256 log key is type 0x02 of C2SP signed-note, which x/mod does not
implement. The key comes from the signed policy, never from the coordinator.
With --output json: {"origin", "keyId", "vkey"}.`,
		Example: "  quorate log key --trust trust > log.vkey",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			lk, err := a.logKey(dir)
			if err != nil {
				return err
			}
			vkey, err := ledger.VerifierKey(lk.Origin, lk.Key)
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSON(a.stdout, logKeyJSON{Origin: lk.Origin, KeyID: lk.Key.ID(), VKey: vkey})
			}
			fmt.Fprintln(a.stdout, vkey)
			return nil
		},
	}
	c.Flags().StringVar(&dir, "trust", "", "trust directory")
	c.Flags().StringVar(&output, "output", "text", "text or json")
	return c
}

// logKeyJSON is log key --output json.
type logKeyJSON struct {
	Origin string `json:"origin"`
	KeyID  string `json:"keyId"`
	VKey   string `json:"vkey"`
}

// logKey reads the log key from a trust directory.
func (a *app) logKey(dir string) (client.LogKey, error) {
	t, err := a.loadTrust(dir, "", a.now())
	if err != nil {
		return client.LogKey{}, err
	}
	lk, err := t.LogKey()
	if err != nil {
		return client.LogKey{}, usageErr("%w", err)
	}
	return client.LogKey{Origin: lk.Origin, Key: lk.Key}, nil
}

// notVerified reports err of a log command. A check that failed is
// returned as what, then err (exit 1); under --output json the CLI's error
// object carries its code (ledger.Code: fork, root_mismatch,
// entry_modified, checkpoint_signature, proof, ...; or the policy's, e.g.
// not_witnessed). An error of the coordinator's API is returned as it is
// (retryable ones say so), usage and trust-material errors too (exit 2).
func (a *app) notVerified(what string, err error) error {
	var ae *client.APIError
	var ee *exitError
	switch {
	case errors.As(err, &ae):
		return describeAPIError(err)
	case errors.As(err, &ee):
		return err
	}
	return withCode(exitNotVerified, fmt.Errorf("%s: %w", what, err))
}

func (a *app) logVerify() *cobra.Command {
	var cf clientFlags
	var dir, state, output string
	var requireWitnesses bool
	c := &cobra.Command{
		Use:   "verify --coordinator URL --trust DIR [--state FILE] [--require-witnesses]",
		Short: "Audit the whole log: recompute the tree, check the checkpoint and consistency with the last one seen",
		Long: `Fetch every entry and the latest checkpoint, recompute the Merkle tree from
the entries, check the checkpoint's signature with the log key named in the
trust directory, and check that the tree is consistent with the checkpoint
this command saw last time (kept in --state FILE), so a rewritten or forked
history is detected. On success the new checkpoint is saved to the state file.
With --output json the result is one object (docs/cli.md, JSON output); a
failed check is the error object, its code the ledger's (fork,
root_mismatch, entry_modified, checkpoint_signature, ...) or not_witnessed.
Exit 0 verified, 1 not verified, 2 usage or trust errors.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			lk, err := a.logKey(dir)
			if err != nil {
				return err
			}
			cl, err := a.client(&cf)
			if err != nil {
				return err
			}
			var prev []byte
			if state != "" {
				prev, err = os.ReadFile(state)
				if err != nil && !errors.Is(err, os.ErrNotExist) {
					return usageErr("reading --state: %w", err)
				}
			}
			got, err := cl.AuditLog(cmd.Context(), lk, prev)
			if err != nil {
				return a.notVerified("log NOT verified", err)
			}
			if state != "" {
				if err := atomicfile.Write(state, got.Note, 0o600); err != nil {
					return err
				}
			}
			w, werr := a.checkWitnesses(dir, got.Note, requireWitnesses)
			cp := got.Checkpoint
			if output == "json" {
				if werr != nil {
					return a.notVerified("witnesses NOT verified", werr)
				}
				out := logVerifyJSON{Verified: true, Size: cp.Size, Root: base64.StdEncoding.EncodeToString(cp.Root[:]), Checkpoint: string(got.Note), Witnesses: w}
				if cp.Size > 0 {
					out.Time = cp.Time.UTC().Format(time.RFC3339Nano)
				}
				return writeJSON(a.stdout, out)
			}
			if cp.Size == 0 {
				// No entry, no time: never print the zero time (1970).
				fmt.Fprintln(a.stdout, "log verified: empty (no entries logged yet)")
			} else {
				fmt.Fprintf(a.stdout, "log verified: %d entries, root %s, logged up to %s\n", cp.Size, base64.StdEncoding.EncodeToString(cp.Root[:]), cp.Time.Format(time.RFC3339))
			}
			if w != nil {
				fmt.Fprintf(a.stdout, "witnesses: %s\n", display.String(w.String()))
			}
			if werr != nil {
				return a.notVerified("witnesses NOT verified", werr)
			}
			return nil
		},
	}
	cf.add(c)
	c.Flags().StringVar(&dir, "trust", "", "trust directory naming the log key")
	c.Flags().StringVar(&state, "state", "", "file keeping the last verified checkpoint (consistency is checked against it)")
	c.Flags().BoolVar(&requireWitnesses, "require-witnesses", false, "fail unless the checkpoint is cosigned by the quorum of the policy's witnesses")
	c.Flags().StringVar(&output, "output", "text", "text or json")
	return c
}

// logVerifyJSON is log verify --output json when the log verified.
type logVerifyJSON struct {
	Verified   bool                    `json:"verified"`
	Size       int64                   `json:"size"`
	Root       string                  `json:"root"`           // base64 of the tree hash
	Time       string                  `json:"time,omitempty"` // the last entry's (absent when empty)
	Checkpoint string                  `json:"checkpoint"`     // the signed note, with cosignatures
	Witnesses  *policy.WitnessEvidence `json:"witnesses,omitempty"`
}

// checkWitnesses checks the witness cosignatures on a verified checkpoint
// note against the quorum of the policy in dir (policy.CheckpointWitnesses).
// A cosignature of a policy witness that does not verify fails; a quorum
// not met is a warning, or a failure when required. It returns nil
// evidence when the policy names no witnesses and none are required.
func (a *app) checkWitnesses(dir string, note []byte, require bool) (*policy.WitnessEvidence, error) {
	t, err := a.loadTrust(dir, "", a.now())
	if err != nil {
		return nil, err
	}
	w, err := t.CheckpointWitnesses(note)
	switch {
	case errors.Is(err, policy.ErrNoWitnesses) && !require:
		return nil, nil
	case err != nil:
		return nil, err
	}
	if !w.Met {
		if require {
			return w, w.Err()
		}
		a.errf("warning: %s\n", display.String(w.Err().Error()))
	}
	return w, nil
}

func (a *app) logShow() *cobra.Command {
	var cf clientFlags
	var start, end int64
	var output string
	c := &cobra.Command{
		Use:   "show --coordinator URL [--start N] [--end M]",
		Short: "Print the latest checkpoint and log entries",
		Long: `Print the coordinator's latest checkpoint and the entries [--start, --end).
Nothing is verified here ('quorate log verify' audits): each entry is only
checked to be a well-formed entry. With --output json: {"checkpoint",
"entries"}, each entry in the ledger's own JSON form.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := a.client(&cf)
			if err != nil {
				return err
			}
			note, err := cl.Checkpoint(cmd.Context())
			if err != nil {
				return describeAPIError(err)
			}
			if end < 0 {
				end = start + 100
			}
			es, err := cl.LogEntries(cmd.Context(), start, end)
			if err != nil {
				return describeAPIError(err)
			}
			entries := make([]*ledger.Entry, len(es))
			for i, raw := range es {
				if entries[i], err = ledger.ParseEntry(raw); err != nil {
					return fmt.Errorf("the coordinator served a malformed entry: %w", err)
				}
			}
			if output == "json" {
				out := logShowJSON{Checkpoint: string(note), Entries: make([]json.RawMessage, len(es))}
				for i, raw := range es {
					out.Entries[i] = raw
				}
				return writeJSON(a.stdout, out)
			}
			fmt.Fprintf(a.stdout, "%s\n", note)
			for _, e := range entries {
				fmt.Fprintf(a.stdout, "%6d  %s  %-20s %s %s\n", e.Index, e.Time.Format(time.RFC3339Nano), e.Type, e.RequestID, keys.Short(e.KeyID))
			}
			return nil
		},
	}
	cf.add(c)
	c.Flags().Int64Var(&start, "start", 0, "first entry")
	c.Flags().Int64Var(&end, "end", -1, "end of the range (exclusive; default start+100)")
	c.Flags().StringVar(&output, "output", "text", "text or json")
	return c
}

// logShowJSON is log show --output json.
type logShowJSON struct {
	Checkpoint string            `json:"checkpoint"` // as served, not verified
	Entries    []json.RawMessage `json:"entries"`    // each a well-formed ledger entry
}

func (a *app) logProof() *cobra.Command {
	var cf clientFlags
	var dir, output string
	var index int64
	c := &cobra.Command{
		Use:   "proof --coordinator URL --trust DIR --index N",
		Short: "Prove one entry is in the log and check the proof",
		Long: `Fetch entry N, its inclusion proof in the tree of the latest checkpoint
(checked with the log key of the trust directory) and verify the proof.
With --output json: {"verified", "index", "size", "root", "entry",
"proof"}; a proof that does not verify is the error object with code
proof (exit 1).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			lk, err := a.logKey(dir)
			if err != nil {
				return err
			}
			cl, err := a.client(&cf)
			if err != nil {
				return err
			}
			p, err := cl.ProveEntry(cmd.Context(), lk, index)
			switch {
			case errors.Is(err, client.ErrEntryNotInLog):
				return usageErr("%w", err)
			case errors.Is(err, ledger.ErrProof):
				return a.notVerified("inclusion proof does NOT verify", err)
			case err != nil && ledger.Code(err) != "":
				return a.notVerified("log NOT verified", err)
			case err != nil:
				return describeAPIError(err)
			}
			cp, e := p.Checkpoint, p.Entry
			if output == "json" {
				out := logProofJSON{Verified: true, Index: index, Size: cp.Size, Root: base64.StdEncoding.EncodeToString(cp.Root[:]), Entry: p.Raw}
				for _, h := range p.Proof {
					out.Proof = append(out.Proof, base64.StdEncoding.EncodeToString(h[:]))
				}
				return writeJSON(a.stdout, out)
			}
			fmt.Fprintf(a.stdout, "entry %d (%s, %s, logged %s) is in the log of size %d: %d-hash proof verified\n",
				index, e.Type, e.RequestID, e.Time.Format(time.RFC3339Nano), cp.Size, len(p.Proof))
			return nil
		},
	}
	cf.add(c)
	c.Flags().StringVar(&dir, "trust", "", "trust directory naming the log key")
	c.Flags().Int64Var(&index, "index", 0, "entry index")
	c.Flags().StringVar(&output, "output", "text", "text or json")
	return c
}

// logProofJSON is log proof --output json when the proof verified.
type logProofJSON struct {
	Verified bool            `json:"verified"`
	Index    int64           `json:"index"`
	Size     int64           `json:"size"`  // of the checkpoint's tree
	Root     string          `json:"root"`  // base64
	Entry    json.RawMessage `json:"entry"` // the ledger entry
	Proof    []string        `json:"proof"` // base64 hashes, leaf to root
}
