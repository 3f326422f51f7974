package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/quorate-dev/quorate/approval"
	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/internal/atomicfile"
	"github.com/quorate-dev/quorate/internal/display"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/signer/client"
)

// DefaultAttestationExpiry is how long an approval stays valid by default.
const DefaultAttestationExpiry = 30 * 24 * time.Hour

func (a *app) attestCommand() *cobra.Command {
	var dir, gate, predFile, provURI, provDigest, out, requestID, state string
	var artifacts, digests []string
	var img imageFlags
	var expires time.Duration
	c := &cobra.Command{
		Use:   "attest --trust DIR --gate NAME (--artifact PATH... | --digest sha256:HEX... | --image REF...) --out FILE",
		Short: "Write the unsigned release-approval envelope for artifacts",
		Long: `Write an unsigned DSSE envelope over an in-toto Statement that approves the
artifacts for a gate under the current policy version. Parties then add their
signatures with 'quorate sign', and anyone checks the result with
'quorate verify'.

Build provenance (SLSA Provenance v1) can be embedded with --predicate FILE (a
bare predicate, an in-toto Statement or a DSSE envelope carrying one) or
referenced with --provenance-uri and --provenance-digest.`,
		Example: "  quorate attest --trust trust --gate production --artifact dist/app.tar.gz --out app.intoto.json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if gate == "" || out == "" {
				return usageErr("--gate NAME and --out FILE are required")
			}
			if len(artifacts)+len(digests)+len(img.refs) == 0 {
				return usageErr("give at least one --artifact PATH, --digest sha256:HEX or --image REF")
			}
			now := a.now()
			t, err := a.loadTrust(dir, state, now)
			if err != nil {
				return err
			}
			if _, ok := t.Roles.Gates[gate]; !ok {
				return usageErr("gate %q is not in the policy (gates: %s)", gate, strings.Join(t.Roles.GateNames(), ", "))
			}
			set, err := a.resolve(cmd.Context(), artifacts, digests, &img)
			if err != nil {
				return err
			}
			subjects := set.Subjects
			if requestID == "" {
				requestID = newID()
			}
			pred := attest.Predicate{
				Gate:      gate,
				Policy:    attest.PolicyRef{Version: t.Version(), Digest: map[string]string{"sha256": t.Digest}},
				RequestID: requestID,
				Created:   now.UTC().Truncate(time.Second),
				Expires:   now.Add(expires).UTC().Truncate(time.Second),
			}
			if pred.Provenance, err = provenanceFrom(predFile, provURI, provDigest); err != nil {
				return usageErr("%w", err)
			}
			st, err := attest.NewStatement(subjects, pred)
			if err != nil {
				return usageErr("%w", err)
			}
			data, err := attest.Encode(attest.NewEnvelope(st))
			if err != nil {
				return err
			}
			if err := atomicfile.Write(out, data, 0o644); err != nil {
				return err
			}
			a.errf("wrote %s: gate %s, %d subject(s), policy v%d, request %s, expires %s\n", out, gate, len(subjects), t.Version(), requestID, pred.Expires.Format(time.RFC3339))
			return nil
		},
	}
	c.Flags().StringVar(&dir, "trust", "", "trust directory (the policy the approval is made under)")
	c.Flags().StringVar(&gate, "gate", "", "gate the release is approved for")
	c.Flags().StringArrayVar(&artifacts, "artifact", nil, "artifact file to approve (repeat)")
	c.Flags().StringArrayVar(&digests, "digest", nil, "artifact digest to approve, as sha256:HEX or NAME=sha256:HEX (repeat)")
	img.add(c, "image to approve")
	c.Flags().StringVar(&predFile, "predicate", "", "SLSA Provenance v1 to embed")
	c.Flags().StringVar(&provURI, "provenance-uri", "", "URI of build provenance to reference")
	c.Flags().StringVar(&provDigest, "provenance-digest", "", "sha256:HEX of the referenced provenance")
	c.Flags().StringVar(&out, "out", "", "envelope file to write")
	c.Flags().StringVar(&requestID, "request-id", "", "request ID to bind (default: a random one)")
	c.Flags().DurationVar(&expires, "expires", DefaultAttestationExpiry, "how long the approval stays valid")
	c.Flags().StringVar(&state, "state", "", "trusted-versions state file (default under $XDG_STATE_HOME/quorate; 'none' to disable)")
	return c
}

func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b[:])
}

// subjectsFrom hashes artifact files and parses digest flags
// (approval.Resolve without images).
func subjectsFrom(artifacts, digests []string) ([]attest.Subject, error) {
	set, err := approval.Resolve(context.Background(), approval.Input{Artifacts: artifacts, Digests: digests}, nil)
	if err != nil {
		return nil, err
	}
	return set.Subjects, nil
}

// artifactsFrom builds what verify checks against.
func artifactsFrom(artifacts, digests []string) ([]policy.Artifact, error) {
	set, err := approval.Resolve(context.Background(), approval.Input{Artifacts: artifacts, Digests: digests}, nil)
	if err != nil {
		return nil, err
	}
	return set.Artifacts, nil
}

func provenanceFrom(file, uri, digest string) (*attest.Provenance, error) {
	switch {
	case file != "" && uri != "":
		return nil, fmt.Errorf("--predicate and --provenance-uri exclude each other")
	case uri != "":
		d, err := attest.ParseDigest(digest)
		if err != nil || d.Alg != "sha256" {
			return nil, fmt.Errorf("--provenance-uri needs --provenance-digest sha256:HEX")
		}
		return &attest.Provenance{PredicateType: attest.SLSAProvenance, URI: uri, Digest: map[string]string{"sha256": d.Hex}}, nil
	case file == "":
		return nil, nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading --predicate: %w", err)
	}
	body, err := slsaPredicate(data)
	if err != nil {
		return nil, fmt.Errorf("--predicate %s: %w", file, err)
	}
	return &attest.Provenance{PredicateType: attest.SLSAProvenance, Predicate: body}, nil
}

// slsaPredicate extracts a SLSA Provenance v1 predicate from a bare
// predicate, an in-toto Statement, or a DSSE envelope carrying a Statement.
func slsaPredicate(data []byte) (json.RawMessage, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if _, ok := probe["payloadType"]; ok {
		_, payload, err := attest.ParseEnvelope(data, attest.DefaultLimits)
		if err != nil {
			return nil, err
		}
		return slsaPredicate(payload)
	}
	if _, ok := probe["predicateType"]; ok {
		var st attest.Statement
		if err := json.Unmarshal(data, &st); err != nil {
			return nil, err
		}
		if st.PredicateType != attest.SLSAProvenance {
			return nil, fmt.Errorf("statement predicateType %q is not %s", st.PredicateType, attest.SLSAProvenance)
		}
		return st.Predicate, nil
	}
	if _, ok := probe["buildDefinition"]; !ok {
		return nil, fmt.Errorf("not SLSA Provenance v1 (no buildDefinition)")
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, data); err != nil {
		return nil, err
	}
	return compact.Bytes(), nil
}

func (a *app) signCommand() *cobra.Command {
	var uri, in, out, requestID, trustDir, certChain string
	var artifacts []string
	var img imageFlags
	var allowExtra, keylessSig bool
	var cf clientFlags
	c := &cobra.Command{
		Use:   "sign --key URI [--keyless --cert-chain FILE] (--in FILE [--out FILE] | --coordinator URL --request ID)",
		Short: "Add your signature to a release approval (a file, or a request on a coordinator)",
		Long: `Offline: add one signature, made with the key at URI, to the envelope in FILE.
The envelope is rewritten in place unless --out is given.

Through a coordinator: fetch request ID, check it, sign its payload locally and
submit the signature (the private key never leaves its HSM/KMS). With
--artifact PATH... (or --image REF..., the check that CI built this image:
each is resolved to its manifest digest) the request's subjects must be
exactly those files and images: a request with any other subject is refused, unless --allow-extra-subjects is
given, and then each extra subject is printed before signing. With --trust
DIR its policy must be the trust directory's. A policy change request (ID
pc:...) is signed as 'quorate policy approve ID' does.

What is being approved (gate, subjects, policy version, who has signed) is
printed to stderr first: read it before you sign.

Signing a request again with a key that already signed it (a CI retry, a
second click) succeeds (exit 0): it says when that key's signature was
recorded and that it counts; nothing new is stored or counted. Keys are
matched by identity, not signature bytes (ECDSA signatures differ each time).

Keyless (a CI job): with --keyless --cert-chain FILE, --key is the job's
ephemeral key and FILE the PEM chain (leaf first) Fulcio issued for it; the
signature's keyid carries the chain (docs/keys.md), and it counts for a role
listing the certificate's identity ('quorate policy role --identity') once
quorate's ledger has logged it within the certificate's validity.

` + keyURIHelp,
		Example: "  quorate sign --key file:ops.key --in app.intoto.json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if keylessSig != (certChain != "") {
				return usageErr("--keyless and --cert-chain FILE go together")
			}
			if requestID != "" {
				if in != "" || out != "" {
					return usageErr("--request and --in/--out exclude each other")
				}
				if strings.HasPrefix(requestID, client.ChangeIDPrefix) {
					if keylessSig {
						return usageErr("--keyless signs release requests, not policy changes (%s…)", client.ChangeIDPrefix)
					}
					return a.approveChange(cmd.Context(), &cf, requestID, uri)
				}
				return a.signRequest(cmd.Context(), &cf, requestID, uri, trustDir, certChain, artifacts, &img, allowExtra)
			}
			if uri == "" || in == "" {
				return usageErr("--key URI and --in FILE (or --coordinator URL --request ID) are required")
			}
			data, err := os.ReadFile(in)
			if err != nil {
				return usageErr("reading envelope: %w", err)
			}
			env, payload, err := attest.ParseEnvelope(data, attest.DefaultLimits)
			if err != nil {
				return err
			}
			st, pred, err := attest.ParseStatement(payload, attest.DefaultLimits)
			if err != nil {
				return fmt.Errorf("refusing to sign: %w", err)
			}
			if env.PayloadType != attest.PayloadType {
				return fmt.Errorf("refusing to sign: payloadType %q is not %s", env.PayloadType, attest.PayloadType)
			}
			if !a.now().Before(pred.Expires) {
				return fmt.Errorf("refusing to sign: the approval expired at %s", pred.Expires.Format(time.RFC3339))
			}
			a.describe(st, pred, env)
			s, err := a.registry.Signer(cmd.Context(), uri)
			if err != nil {
				return err
			}
			defer s.Close()
			var chain []*x509.Certificate
			if keylessSig {
				if chain, err = readCertChain(certChain, s.Public()); err != nil {
					return err
				}
			}
			if _, err := attest.Sign(cmd.Context(), env, s); err != nil {
				return err
			}
			if keylessSig {
				makeKeyless(env, chain)
			}
			enc, err := attest.Encode(env)
			if err != nil {
				return err
			}
			if out == "" {
				out = in
			}
			if err := atomicfile.Write(out, enc, 0o644); err != nil {
				return err
			}
			a.errf("signed with key %s; %d signature(s) in %s\n", keys.Short(s.Public().ID()), len(env.Signatures), out)
			return nil
		},
	}
	c.Flags().StringVar(&uri, "key", "", "your signing key URI")
	c.Flags().StringVar(&in, "in", "", "envelope to sign")
	c.Flags().StringVar(&out, "out", "", "write the signed envelope here (default: rewrite --in)")
	c.Flags().StringVar(&requestID, "request", "", "request ID on the coordinator to sign")
	c.Flags().BoolVar(&keylessSig, "keyless", false, "sign keyless: --key is an ephemeral key certified by --cert-chain")
	c.Flags().StringVar(&certChain, "cert-chain", "", "with --keyless: PEM certificate chain of the key, leaf first (from Fulcio)")
	c.Flags().StringVar(&trustDir, "trust", "", "with --request: trust directory the request's policy must match")
	c.Flags().StringArrayVar(&artifacts, "artifact", nil, "with --request: artifact file the request must cover (repeat); the request may hold no other subject")
	img.add(c, "with --request: image the request must cover; the request may hold no other subject")
	c.Flags().BoolVar(&allowExtra, "allow-extra-subjects", false, "with --request and --artifact or --image: sign even if the request holds subjects beyond the artifacts given (they are listed first)")
	cf.add(c)
	return c
}

// describe prints what a party is about to sign.
func (a *app) describe(st *attest.Statement, p *attest.Predicate, env *attest.Envelope) {
	a.errf("approving for gate %q under policy v%d (request %s, expires %s):\n", p.Gate, p.Policy.Version, display.String(p.RequestID), p.Expires.Format(time.RFC3339))
	for _, s := range st.Subject {
		a.errf("  %s sha256:%s\n", display.String(s.Name), display.String(s.Digest["sha256"]))
	}
	if p.Provenance != nil {
		// What the parties approve is how the release was built, too.
		viewProvenance(p.Provenance, nil).write(indentWriter{a.stderr, "  "}, "provenance:")
	}
	if len(env.Signatures) > 0 {
		ids := make([]string, len(env.Signatures))
		for i, s := range env.Signatures {
			ids[i] = keys.Short(s.KeyID)
		}
		a.errf("  already signed by: %s\n", strings.Join(ids, ", "))
	}
}
