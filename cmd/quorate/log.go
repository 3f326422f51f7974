package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/quorate-dev/quorate/internal/atomicfile"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
	"github.com/quorate-dev/quorate/signer/client"
	"github.com/quorate-dev/quorate/signer/ledgerapi"
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
	var dir string
	c := &cobra.Command{
		Use:   "key --trust DIR",
		Short: "Print the log's C2SP verifier key (vkey) from the trust directory",
		Long: `Print the verifier key of the transparency log the verified policy names, in
the C2SP signed-note format (NAME+HASH+BASE64: the log's origin, the key hash,
the signature type byte and the public key), one line on stdout. Tools that
check checkpoints take it as is: Go's golang.org/x/mod/sumdb/note
(note.NewVerifier, then note.Open) for an Ed25519 log key (type 0x01); an
ECDSA P-256 log key is type 0x02 of C2SP signed-note, which x/mod does not
implement. The key comes from the signed policy, never from the coordinator.`,
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
			fmt.Fprintln(a.stdout, vkey)
			return nil
		},
	}
	c.Flags().StringVar(&dir, "trust", "", "trust directory")
	return c
}

// logKey reads the log key from a trust directory.
func (a *app) logKey(dir string) (*policy.LogKey, error) {
	t, err := a.loadTrust(dir, "", a.now())
	if err != nil {
		return nil, err
	}
	lk, err := t.LogKey()
	if err != nil {
		return nil, usageErr("%w", err)
	}
	return lk, nil
}

// fetchAll fetches the entries [0, size), or as many as the coordinator
// serves: the audit then says what is missing or out of place.
// latestCheckpoint fetches the coordinator's latest checkpoint and checks
// its signature with the log key the trust directory names.
func (a *app) latestCheckpoint(cmd *cobra.Command, dir string, cf *clientFlags) (*policy.LogKey, *client.Client, []byte, *ledger.SignedCheckpoint, error) {
	lk, err := a.logKey(dir)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	cl, err := a.client(cf)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	note, err := cl.Checkpoint(cmd.Context())
	if err != nil {
		return nil, nil, nil, nil, describeAPIError(err)
	}
	cp, err := ledger.OpenCheckpoint(note, lk.Origin, lk.Key)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("log NOT verified: checkpoint: %w", err)
	}
	return lk, cl, note, cp, nil
}

func (a *app) fetchAll(cmd *cobra.Command, cl *client.Client, size int64) ([][]byte, error) {
	var all [][]byte
	for start := int64(0); start < size; start += ledgerapi.MaxEntries {
		end := min(size, start+ledgerapi.MaxEntries)
		es, err := cl.LogEntries(cmd.Context(), start, end)
		if err != nil {
			return nil, describeAPIError(err)
		}
		all = append(all, es...)
		if int64(len(es)) < end-start {
			break
		}
	}
	return all, nil
}

func (a *app) logVerify() *cobra.Command {
	var cf clientFlags
	var dir, state string
	var requireWitnesses bool
	c := &cobra.Command{
		Use:   "verify --coordinator URL --trust DIR [--state FILE] [--require-witnesses]",
		Short: "Audit the whole log: recompute the tree, check the checkpoint and consistency with the last one seen",
		Long: `Fetch every entry and the latest checkpoint, recompute the Merkle tree from
the entries, check the checkpoint's signature with the log key named in the
trust directory, and check that the tree is consistent with the checkpoint
this command saw last time (kept in --state FILE), so a rewritten or forked
history is detected. On success the new checkpoint is saved to the state file.
Exit 0 verified, 1 not verified, 2 usage or trust errors.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			lk, cl, note, cp, err := a.latestCheckpoint(cmd, dir, &cf)
			if err != nil {
				return err
			}
			entries, err := a.fetchAll(cmd, cl, cp.Size)
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
			got, err := ledger.Audit(cmd.Context(), ledger.AuditConfig{Origin: lk.Origin, LogKey: lk.Key, Previous: prev, Reference: remoteHashes{cl}}, entries, note)
			if err != nil {
				return fmt.Errorf("log NOT verified: %w", err)
			}
			if state != "" {
				if err := atomicfile.Write(state, got.Note, 0o600); err != nil {
					return err
				}
			}
			if got.Size == 0 {
				// No entry, no time: never print the zero time (1970).
				fmt.Fprintln(a.stdout, "log verified: empty (no entries logged yet)")
			} else {
				fmt.Fprintf(a.stdout, "log verified: %d entries, root %s, logged up to %s\n", got.Size, base64.StdEncoding.EncodeToString(got.Root[:]), got.Time.Format(time.RFC3339))
			}
			return a.checkWitnesses(dir, note, requireWitnesses)
		},
	}
	cf.add(c)
	c.Flags().StringVar(&dir, "trust", "", "trust directory naming the log key")
	c.Flags().StringVar(&state, "state", "", "file keeping the last verified checkpoint (consistency is checked against it)")
	c.Flags().BoolVar(&requireWitnesses, "require-witnesses", false, "fail unless the checkpoint is cosigned by the quorum of the policy's witnesses")
	return c
}

func (a *app) logShow() *cobra.Command {
	var cf clientFlags
	var start, end int64
	c := &cobra.Command{
		Use:   "show --coordinator URL [--start N] [--end M]",
		Short: "Print the latest checkpoint and log entries",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := a.client(&cf)
			if err != nil {
				return err
			}
			note, err := cl.Checkpoint(cmd.Context())
			if err != nil {
				return describeAPIError(err)
			}
			fmt.Fprintf(a.stdout, "%s\n", note)
			if end < 0 {
				end = start + 100
			}
			es, err := cl.LogEntries(cmd.Context(), start, end)
			if err != nil {
				return describeAPIError(err)
			}
			for _, raw := range es {
				e, err := ledger.ParseEntry(raw)
				if err != nil {
					return fmt.Errorf("the coordinator served a malformed entry: %w", err)
				}
				fmt.Fprintf(a.stdout, "%6d  %s  %-20s %s %s\n", e.Index, e.Time.Format(time.RFC3339Nano), e.Type, e.RequestID, keys.Short(e.KeyID))
			}
			return nil
		},
	}
	cf.add(c)
	c.Flags().Int64Var(&start, "start", 0, "first entry")
	c.Flags().Int64Var(&end, "end", -1, "end of the range (exclusive; default start+100)")
	return c
}

func (a *app) logProof() *cobra.Command {
	var cf clientFlags
	var dir string
	var index int64
	c := &cobra.Command{
		Use:   "proof --coordinator URL --trust DIR --index N",
		Short: "Prove one entry is in the log and check the proof",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, cl, _, cp, err := a.latestCheckpoint(cmd, dir, &cf)
			if err != nil {
				return err
			}
			es, err := cl.LogEntries(cmd.Context(), index, index+1)
			if err != nil {
				return describeAPIError(err)
			}
			if len(es) != 1 {
				return usageErr("entry %d is not in the log (size %d)", index, cp.Size)
			}
			raw, err := cl.InclusionProof(cmd.Context(), index, cp.Size)
			if err != nil {
				return describeAPIError(err)
			}
			proof := make(tlog.RecordProof, len(raw))
			for i, h := range raw {
				if len(h) != len(tlog.Hash{}) {
					return fmt.Errorf("proof hash %d has %d bytes", i, len(h))
				}
				copy(proof[i][:], h)
			}
			if err := ledger.VerifyInclusion(proof, index, cp.Size, cp.Root, es[0]); err != nil {
				return fmt.Errorf("inclusion proof does NOT verify: %w", err)
			}
			e, err := ledger.ParseEntry(es[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "entry %d (%s, %s, logged %s) is in the log of size %d: %d-hash proof verified\n",
				index, e.Type, e.RequestID, e.Time.Format(time.RFC3339Nano), cp.Size, len(proof))
			return nil
		},
	}
	cf.add(c)
	c.Flags().StringVar(&dir, "trust", "", "trust directory naming the log key")
	c.Flags().Int64Var(&index, "index", 0, "entry index")
	return c
}

// remoteHashes reads the coordinator's stored hashes, so an audit whose
// recomputed root differs can name the entry that changed. Audit trusts them
// only once they reproduce the signed root.
type remoteHashes struct{ cl *client.Client }

func (r remoteHashes) ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	if len(indexes) == 0 {
		return out, nil
	}
	lo, hi := indexes[0], indexes[0]
	for _, i := range indexes {
		lo, hi = min(lo, i), max(hi, i)
	}
	got := map[int64]tlog.Hash{}
	for start := lo; start <= hi; start += ledgerapi.MaxHashes {
		end := min(hi+1, start+ledgerapi.MaxHashes)
		hs, err := r.cl.StoredHashes(ctx, start, end)
		if err != nil {
			return nil, err
		}
		for i, h := range hs {
			if len(h) != len(tlog.Hash{}) {
				return nil, fmt.Errorf("stored hash %d has %d bytes", start+int64(i), len(h))
			}
			got[start+int64(i)] = tlog.Hash(h)
		}
	}
	for i, x := range indexes {
		h, ok := got[x]
		if !ok {
			return nil, fmt.Errorf("the coordinator returned no stored hash %d", x)
		}
		out[i] = h
	}
	return out, nil
}

func (remoteHashes) Size(context.Context) (int64, error) {
	return 0, errors.New("remote reference: size not available")
}

func (remoteHashes) ReadEntries(context.Context, int64, int64) ([][]byte, error) {
	return nil, errors.New("remote reference: entries not available")
}

func (remoteHashes) Append(context.Context, int64, [][]byte, []tlog.Hash) error {
	return errors.New("remote reference: read-only")
}
