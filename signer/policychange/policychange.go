// Package policychange takes policy change requests: an administrator proposes an edit (a role, a
// gate, a retirement, a revocation); the coordinator builds the next
// policy version from the one it enforces with the policy package's Draft
// functions, without saving it, and keeps it with a human-readable diff;
// administrators sign the proposed version's canonical "signed" (as
// 'quorate policy sign' does), each signature verified on arrival; once a
// threshold of the root's targets keys has signed, the coordinator writes
// the version to the trust directory (with its history), enforces it,
// serves it through the TUF repository and logs policy.published (and
// key.revoked).
//
// # Storage and replicas
//
// Change requests live in the coordinator's database (a [Store], which
// signer/sqlitestore and signer/pgstore implement), so replicas on one
// PostgreSQL database share them: a change proposed through one replica
// can be approved through any other. Publishing writes the trust
// directory first (files, outside the database), then records the
// change as published together with its ledger entries in one store
// transaction. A version written but not recorded (a crash, a failing
// database) is not enforced until it is: [Manager.Run] retries, and
// [Manager.Recover], called before serving, records it after a restart.
// Earlier versions kept change requests as files under
// StateDir/policy-changes/; Recover imports them once.
package policychange

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"go.uber.org/zap"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/internal/strictjson"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
	"github.com/quorate-dev/quorate/provenance"
	"github.com/quorate-dev/quorate/roles"
	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/client"
	"github.com/quorate-dev/quorate/signer/internal/httpapi"
	"github.com/quorate-dev/quorate/signer/internal/storeerr"
)

// ChangesDir is the folder of the state directory holding change requests.
const ChangesDir = "policy-changes"

// Store keeps the change requests, in the coordinator's database, so
// replicas share them. signer/sqlitestore and signer/pgstore implement it;
// implementations must pass signertest.TestChangeStore. Errors wrap
// signer.ErrNotFound, signer.ErrExists and signer.ErrUnavailable.
type Store interface {
	// CreateChange stores a new change request, or fails with
	// signer.ErrExists when its ID is taken.
	CreateChange(ctx context.Context, ch *client.Change) error
	// GetChange returns change request id, or fails with
	// signer.ErrNotFound.
	GetChange(ctx context.Context, id string) (*client.Change, error)
	// ListChanges lists the change requests, oldest first (ties by ID).
	ListChanges(ctx context.Context) ([]*client.Change, error)
	// UpdateChange reads change id, lets update change it and stores the
	// result and the ledger events update returns in one transaction,
	// so a publication, its policy.published entry and the change's state
	// are recorded together or not at all. No other update of id runs
	// in between (on any replica). If update fails nothing is stored. The
	// events are dropped by a store that keeps no ledger.
	// With a supersession (signer.ChangeUpdate.Supersede), the requests it
	// ends and their events are recorded in that transaction too, after the
	// change's own events.
	UpdateChange(ctx context.Context, id string, update func(ch *client.Change) (signer.ChangeUpdate, error)) (*client.Change, error)
}

// Enforcer is the coordinator whose policy the changes edit
// (*signer.Coordinator).
type Enforcer interface {
	Trust() *policy.Trust
	SetTrust(*policy.Trust) error
}

// Config configures a [Manager].
type Config struct {
	// Coordinator enforces the policy and is told of each new version.
	Coordinator Enforcer
	// Store holds the requests whose signatures a revocation affects.
	Store signer.Store
	// Changes keeps the change requests (nil: Store, when it implements
	// [Store], as the SQL stores do).
	Changes Store
	// Ledger, set when the coordinator keeps a ledger (the same store),
	// records each published version and dates the signatures a
	// revocation affects.
	Ledger signer.LedgerStore
	// Clock (default time.Now) and ClockSkew (how far a proposal's
	// "created" may be from it, default 10 minutes).
	Clock     func() time.Time
	ClockSkew time.Duration
	Logger    *zap.Logger
	// TrustDir is the trust directory the coordinator enforces and
	// publishes new versions to.
	TrustDir string
	// StateDir, when set, is where earlier versions kept change requests
	// (StateDir/policy-changes/ID.json): [Manager.Recover] imports them.
	StateDir string
	// Load verifies the trust directory after a version is written
	// (nil: policy.Load trusting the current versions).
	Load func() (*policy.Trust, error)
	// MaxAffected caps the attestations a revocation lists (default 1000).
	MaxAffected int
}

// Manager takes the policy change requests of one coordinator. Its
// methods are safe for concurrent use.
type Manager struct {
	cfg     Config
	changes Store
	ls      signer.LedgerStore // nil without a ledger
	log     *zap.Logger
	// mu serializes this replica's changes and guards owed; the store's
	// UpdateChange serializes them across replicas.
	mu sync.Mutex
	// owed is a publication waiting for its ledger entries (see finish).
	owed *unlogged
}

// New returns a Manager for cfg.
func New(cfg Config) (*Manager, error) {
	if cfg.Coordinator == nil || cfg.Store == nil || cfg.TrustDir == "" {
		return nil, errors.New("policychange: policy change requests need the coordinator, its store and the trust directory")
	}
	if cfg.Changes == nil {
		cs, ok := cfg.Store.(Store)
		if !ok {
			return nil, fmt.Errorf("policychange: the store (%T) does not keep policy change requests: set Config.Changes", cfg.Store)
		}
		cfg.Changes = cs
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.ClockSkew <= 0 {
		cfg.ClockSkew = 10 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return &Manager{cfg: cfg, changes: cfg.Changes, ls: cfg.Ledger, log: cfg.Logger}, nil
}

func validChangeID(id string) bool {
	h, ok := strings.CutPrefix(id, client.ChangeIDPrefix)
	if !ok || len(h) != 32 {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil && strings.ToLower(h) == h
}

func (m *Manager) read(ctx context.Context, id string) (*client.Change, error) {
	if !validChangeID(id) {
		return nil, httpapi.Errorf(httpapi.KindNotFound, "policy change %s not found (IDs look like %s<32 hex digits>)", id, client.ChangeIDPrefix)
	}
	ch, err := m.changes.GetChange(ctx, id)
	if err != nil {
		return nil, changeErr(err, id)
	}
	return ch, nil
}

// changeErr returns err from the change store (or an update function) as
// an API error of the right kind.
func changeErr(err error, id string) error {
	var he *httpapi.Error
	switch {
	case errors.As(err, &he):
		return he
	case errors.Is(err, signer.ErrNotFound):
		return httpapi.Errorf(httpapi.KindNotFound, "policy change %s not found", id)
	case errors.Is(err, signer.ErrExists):
		return httpapi.Errorf(httpapi.KindDuplicate, "policy change %s already exists", id)
	case errors.Is(err, signer.ErrUnavailable), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return &httpapi.Error{Kind: httpapi.KindUnavailable, Msg: "store unavailable for policy change " + id, Err: err}
	}
	return &httpapi.Error{Kind: httpapi.KindInternal, Msg: "storing policy change " + id, Err: err}
}

// Propose checks a signed proposal and opens a change request.
func (m *Manager) Propose(ctx context.Context, in client.ProposeInput) (*client.Change, error) {
	if m == nil {
		return nil, httpapi.ErrNoPolicyChanges
	}
	m.mu.Lock()
	err := m.finish(ctx)
	m.mu.Unlock()
	if err != nil {
		return nil, err
	}
	now := m.cfg.Clock().UTC()
	raw, err := attest.DecodeBase64(in.Spec)
	if err != nil || len(raw) == 0 {
		return nil, httpapi.Errorf(httpapi.KindInvalid, "spec is not base64")
	}
	if len(raw) > 256<<10 {
		return nil, httpapi.Errorf(httpapi.KindTooLarge, "spec of %d bytes is over the 256 KiB limit", len(raw))
	}
	var spec client.ChangeSpec
	if err := strictjson.Unmarshal(raw, &spec); err != nil {
		return nil, httpapi.Errorf(httpapi.KindInvalid, "spec: %w", err)
	}
	t := m.cfg.Coordinator.Trust()
	proposer, err := m.checkAdminPAE(t, client.ChangePayloadType, raw, in.Signature)
	if err != nil {
		return nil, err
	}
	if d := spec.Created.Sub(now); d > m.cfg.ClockSkew || d < -m.cfg.ClockSkew {
		return nil, httpapi.Errorf(httpapi.KindInvalid, "spec created %s is more than %s from the coordinator's clock", spec.Created.Format(time.RFC3339), m.cfg.ClockSkew)
	}
	if spec.BaseVersion != t.Version() {
		return nil, httpapi.Errorf(httpapi.KindStalePolicy, "the proposal is based on policy version %d; the coordinator enforces version %d", spec.BaseVersion, t.Version())
	}
	sum := sha256.Sum256(raw)
	id := client.ChangeIDPrefix + hex.EncodeToString(sum[:16])
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.changes.GetChange(ctx, id); err == nil {
		return nil, httpapi.Errorf(httpapi.KindDuplicate, "policy change %s already exists", id)
	}
	d, err := author.OpenDraft(m.cfg.TrustDir, now)
	if err != nil {
		return nil, &httpapi.Error{Kind: httpapi.KindInternal, Msg: "opening the trust directory", Err: err}
	}
	if dg, err := policy.PolicyDigest(d.Targets); err != nil || dg != t.Digest || !d.TargetsPublished() {
		return nil, httpapi.Errorf(httpapi.KindStalePolicy, "the trust directory's targets.json is not the published policy version %d the coordinator enforces (an offline edit in progress?): finish or discard it first", t.Version())
	}
	var revoked *keys.PublicKey
	if revoked, err = applySpec(d, spec); err != nil {
		return nil, httpapi.Errorf(httpapi.KindInvalid, "%w", err)
	}
	diff, err := author.Diff(t.Targets, d.Targets)
	if err != nil {
		return nil, httpapi.Errorf(httpapi.KindInvalid, "%w", err)
	}
	targets, err := d.Targets.ToBytes(false)
	if err != nil {
		return nil, &httpapi.Error{Kind: httpapi.KindInternal, Msg: "encoding the proposed policy", Err: err}
	}
	digest, err := policy.PolicyDigest(d.Targets)
	if err != nil {
		return nil, &httpapi.Error{Kind: httpapi.KindInternal, Msg: "digest of the proposed policy", Err: err}
	}
	ch := &client.Change{ID: id, State: client.ChangePending, Spec: spec, Proposer: proposer.ID(), BaseVersion: t.Version(), BaseDigest: t.Digest,
		Version: d.Targets.Signed.Version, Digest: digest, Targets: targets, Diff: diff, Threshold: t.Root.Signed.Roles[metadata.TARGETS].Threshold,
		Signatures: []client.ChangeSignature{}, Created: now, Updated: now}
	if revoked != nil {
		if ch.Affected, err = m.affectedBy(ctx, t, revoked, spec.Revoke.Since); err != nil {
			return nil, err
		}
	}
	if spec.SupersedePending {
		if ch.Supersedes, err = AffectedGates(t.Targets, d.Targets); err != nil {
			return nil, httpapi.Errorf(httpapi.KindInvalid, "the proposed policy's gates: %w", err)
		}
		if len(ch.Supersedes) == 0 {
			return nil, httpapi.Errorf(httpapi.KindInvalid, "supersedePending: the change affects no gate (no gate's roles, keys, thresholds or provenance requirement differ), so it would supersede no request: propose it without")
		}
	}
	if err := m.changes.CreateChange(ctx, ch); err != nil {
		return nil, changeErr(err, id)
	}
	m.log.Info("policy change proposed", zap.String("change", id), zap.String("proposer", ch.Proposer), zap.Int64("version", ch.Version), zap.Strings("diff", diff))
	return ch, nil
}

// applySpec applies the one edit spec asks for to d; for a revocation it
// returns the revoked key.
func applySpec(d *author.Draft, spec client.ChangeSpec) (*keys.PublicKey, error) {
	n := 0
	for _, set := range []bool{spec.Role != nil, spec.Gate != nil, spec.Retire != "", spec.Revoke != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, errors.New("a proposal makes exactly one change: role, gate, retire or revoke")
	}
	exp := time.Duration(spec.PolicyExpiresSeconds) * time.Second
	if exp < 0 {
		return nil, errors.New("policyExpiresSeconds is negative")
	}
	switch {
	case spec.Role != nil:
		ks := make([]*keys.PublicKey, 0, len(spec.Role.Keys))
		for i, rec := range spec.Role.Keys {
			k, err := keys.FromTUF(rec)
			if err != nil {
				return nil, fmt.Errorf("role %s: key %d: %w", spec.Role.Name, i+1, err)
			}
			ks = append(ks, k)
		}
		for _, id := range spec.Role.Names.IDs() {
			if !slices.ContainsFunc(ks, func(k *keys.PublicKey) bool { return k.ID() == id }) {
				return nil, fmt.Errorf("role %s: names key %s, which is not one of the role's keys", spec.Role.Name, keys.Short(id))
			}
		}
		if err := d.SetRole(spec.Role.Name, ks, spec.Role.Threshold, exp); err != nil || len(spec.Role.Names) == 0 {
			return nil, err
		}
		return nil, d.NameKeys(spec.Role.Names, exp)
	case spec.Gate != nil:
		return nil, applyGate(d, spec.Gate, exp)
	case spec.Retire != "":
		k, err := d.FindKey(spec.Retire)
		if err != nil {
			return nil, err
		}
		return nil, d.Retire(k, exp)
	default:
		k, err := d.FindKey(spec.Revoke.KeyID)
		if err != nil {
			return nil, err
		}
		return k, d.Revoke(k, spec.Revoke.Since, spec.Revoke.Reason, exp)
	}
}

// applyGate applies a gate change: its roles, then its provenance
// requirement, as 'quorate policy gate' does offline.
func applyGate(d *author.Draft, g *client.GateSpec, exp time.Duration) error {
	switch {
	case g.Provenance != nil && g.NoProvenance:
		return fmt.Errorf("gate %s: provenance and noProvenance exclude each other", g.Name)
	case len(g.Roles) == 0 && g.Provenance == nil && !g.NoProvenance:
		return fmt.Errorf("gate %s: roles are required (or, for an existing gate, provenance or noProvenance)", g.Name)
	}
	if len(g.Roles) > 0 {
		if err := d.SetGate(g.Name, g.Roles, exp); err != nil {
			return err
		}
	}
	switch {
	case g.Provenance != nil:
		return d.SetGateProvenance(g.Name, g.Provenance, exp)
	case g.NoProvenance:
		return d.SetGateProvenance(g.Name, nil, exp)
	}
	return nil
}

// checkAdminPAE verifies sig over PAE(payloadType, payload) by a key of
// the root's targets role.
func (m *Manager) checkAdminPAE(t *policy.Trust, payloadType string, payload []byte, sig attest.Signature) (*keys.PublicKey, error) {
	r := t.Root.Signed.Roles[metadata.TARGETS]
	rec, ok := t.Root.Signed.Keys[sig.KeyID]
	if r == nil || !ok || !slices.Contains(r.KeyIDs, sig.KeyID) {
		return nil, httpapi.Errorf(httpapi.KindUnauthorized, "key %s is not an administrator key (targets role) of root version %d", keys.Short(sig.KeyID), t.Root.Signed.Version)
	}
	k, err := keys.FromTUF(rec)
	if err != nil {
		return nil, httpapi.Errorf(httpapi.KindInternal, "administrator key %s: %w", keys.Short(sig.KeyID), err)
	}
	raw, err := attest.DecodeBase64(sig.Sig)
	if err != nil || k.Verify(dsse.PAE(payloadType, payload), raw) != nil {
		return nil, httpapi.Errorf(httpapi.KindBadSignature, "signature by key %s does not verify over the proposal", keys.Short(sig.KeyID))
	}
	return k, nil
}

// Get returns a change request. A pending one whose base version is
// no longer enforced is shown (and kept) as superseded, or as published
// when the enforced policy is the proposed version itself.
func (m *Manager) Get(ctx context.Context, id string) (*client.Change, error) {
	ch, unlock, err := m.lockChange(ctx, id, false)
	if err != nil {
		return nil, err
	}
	unlock()
	return ch, nil
}

// lockChange reads and settles change id with the change lock held; the
// caller calls unlock.
// With flush, a publication waiting for its ledger entries is finished
// first (and its failure returned).
func (m *Manager) lockChange(ctx context.Context, id string, flush bool) (*client.Change, func(), error) {
	if m == nil {
		return nil, nil, httpapi.ErrNoPolicyChanges
	}
	m.mu.Lock()
	if flush {
		if err := m.finish(ctx); err != nil {
			m.mu.Unlock()
			return nil, nil, err
		}
	}
	ch, err := m.read(ctx, id)
	if err == nil {
		ch, err = m.settle(ctx, ch)
	}
	if err != nil {
		m.mu.Unlock()
		return nil, nil, err
	}
	return ch, m.mu.Unlock, nil
}

// settle moves a pending change whose base this coordinator no longer
// enforces to its final state: published when the enforced version is
// the one it proposes (a publication interrupted after writing the trust
// directory: recorded now, with its ledger entries), else superseded. A
// replica still enforcing an older version than the change's base (not
// reloaded yet) leaves it pending. Called with m.mu held.
func (m *Manager) settle(ctx context.Context, ch *client.Change) (*client.Change, error) {
	t := m.cfg.Coordinator.Trust()
	if ch.State != client.ChangePending || t.Version() < ch.BaseVersion || (t.Version() == ch.BaseVersion && t.Digest == ch.BaseDigest) {
		return ch, nil
	}
	if t.Version() == ch.Version && t.Digest == ch.Digest {
		return m.markPublished(ctx, ch.ID, ch.Version)
	}
	reason, now := fmt.Sprintf("the coordinator now enforces policy version %d; propose the change again", t.Version()), m.cfg.Clock().UTC()
	settled, err := m.changes.UpdateChange(ctx, ch.ID, func(c *client.Change) (signer.ChangeUpdate, error) {
		if c.State == client.ChangePending {
			c.State, c.StateReason, c.Updated = client.ChangeSuperseded, reason, now
		}
		return signer.ChangeUpdate{}, nil
	})
	if err != nil {
		return nil, changeErr(err, ch.ID)
	}
	return settled, nil
}

// markPublished records change id as published as version, with its
// ledger entries (policy.published, key.revoked) in the same store
// transaction, and, when the change asks for it, supersedes the pending
// requests of the gates it affects there too; a change already recorded
// so is left as it is.
func (m *Manager) markPublished(ctx context.Context, id string, version int64) (*client.Change, error) {
	now := m.cfg.Clock().UTC()
	ch, err := m.changes.UpdateChange(ctx, id, func(c *client.Change) (signer.ChangeUpdate, error) {
		if c.State != client.ChangePending {
			return signer.ChangeUpdate{}, nil
		}
		c.State, c.StateReason, c.Updated = client.ChangePublished, fmt.Sprintf("published as policy version %d", version), now
		events, err := m.publishedEvents(c)
		if err != nil {
			return signer.ChangeUpdate{}, err
		}
		return signer.ChangeUpdate{Events: events, Supersede: supersession(c, version, now)}, nil
	})
	if err != nil {
		return nil, changeErr(err, id)
	}
	return ch, nil
}

// List lists change requests, oldest first.
func (m *Manager) List(ctx context.Context) ([]*client.Change, error) {
	if m == nil {
		return nil, httpapi.ErrNoPolicyChanges
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	chs, err := m.changes.ListChanges(ctx)
	if err != nil {
		return nil, changeErr(err, "(listing)")
	}
	for i, ch := range chs {
		if chs[i], err = m.settle(ctx, ch); err != nil {
			return nil, err
		}
	}
	return chs, nil
}

// ApproveResult is the outcome of an accepted administrator signature.
type ApproveResult struct {
	Change *client.Change
	// Published is true when this signature met the threshold and the
	// version was published.
	Published bool
}

// Approve verifies an administrator's signature over the canonical
// JSON of the proposed version's "signed" and records it; at the root's
// targets threshold it publishes the version.
func (m *Manager) Approve(ctx context.Context, id string, sig attest.Signature) (*ApproveResult, error) {
	ch, unlock, err := m.lockChange(ctx, id, true)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if ch.State != client.ChangePending {
		return nil, httpapi.Errorf(httpapi.KindNotPending, "policy change %s is %s: %s", id, ch.State, ch.StateReason)
	}
	t := m.cfg.Coordinator.Trust()
	raw, err := attest.DecodeBase64(sig.Sig)
	if err != nil || len(raw) == 0 {
		return nil, httpapi.Errorf(httpapi.KindInvalid, "signature.sig is not base64")
	}
	now := m.cfg.Clock().UTC()
	var (
		proposed *metadata.Metadata[metadata.TargetsType]
		k        *keys.PublicKey
	)
	// The signature is checked and added inside the store's update, so
	// approvals arriving at two replicas at once are both kept.
	ch, err = m.changes.UpdateChange(ctx, id, func(c *client.Change) (signer.ChangeUpdate, error) {
		if c.State != client.ChangePending {
			return signer.ChangeUpdate{}, httpapi.Errorf(httpapi.KindNotPending, "policy change %s is %s: %s", id, c.State, c.StateReason)
		}
		var err error
		if proposed, err = policy.ParseTargets(c.Targets); err != nil {
			return signer.ChangeUpdate{}, &httpapi.Error{Kind: httpapi.KindInternal, Msg: "policy change " + id + " holds a malformed policy", Err: err}
		}
		k, err = author.VerifyPolicySignature(t.Root, proposed, sig.KeyID, raw)
		switch {
		case errors.Is(err, author.ErrNotPolicySigner):
			return signer.ChangeUpdate{}, httpapi.Errorf(httpapi.KindUnauthorized, "%w", err)
		case err != nil:
			return signer.ChangeUpdate{}, httpapi.Errorf(httpapi.KindBadSignature, "%w", err)
		}
		for _, p := range c.Signatures {
			if p.Identity == k.Identity().String() {
				return signer.ChangeUpdate{}, httpapi.Errorf(httpapi.KindDuplicate, "key %s (or the same public key under another key ID) has already signed policy change %s", keys.Short(k.ID()), id)
			}
		}
		proposed.Signatures = append(proposed.Signatures, metadata.Signature{KeyID: k.ID(), Signature: raw})
		if c.Targets, err = proposed.ToBytes(false); err != nil {
			return signer.ChangeUpdate{}, &httpapi.Error{Kind: httpapi.KindInternal, Msg: "encoding policy change " + id, Err: err}
		}
		c.Signatures = append(c.Signatures, client.ChangeSignature{KeyID: k.ID(), Identity: k.Identity().String(), Received: now})
		c.Updated = now
		return signer.ChangeUpdate{}, nil
	})
	if err != nil {
		return nil, changeErr(err, id)
	}
	m.log.Info("policy change signed", zap.String("change", id), zap.String("keyid", k.ID()), zap.Int("signatures", len(ch.Signatures)), zap.Int("threshold", ch.Threshold))
	if t.Root.VerifyDelegate(metadata.TARGETS, proposed) != nil {
		return &ApproveResult{Change: ch}, nil
	}
	if err := m.publish(ctx, ch, proposed); err != nil {
		return nil, err
	}
	return &ApproveResult{Change: ch, Published: true}, nil
}

// publish writes the proposed version to the trust directory, enforces
// it and logs it. Called with m.mu held.
func (m *Manager) publish(ctx context.Context, ch *client.Change, proposed *metadata.Metadata[metadata.TargetsType]) error {
	now := m.cfg.Clock()
	d, err := author.OpenDraft(m.cfg.TrustDir, now)
	if err != nil {
		return &httpapi.Error{Kind: httpapi.KindInternal, Msg: "opening the trust directory", Err: err}
	}
	if dg, err := policy.PolicyDigest(d.Targets); err != nil || dg != ch.BaseDigest {
		return httpapi.Errorf(httpapi.KindStalePolicy, "the trust directory no longer holds policy version %d (sha256:%s), which change %s is based on", ch.BaseVersion, keys.Short(ch.BaseDigest), ch.ID)
	}
	if err := d.AdoptTargets(proposed); err != nil {
		return &httpapi.Error{Kind: httpapi.KindInternal, Msg: "adopting policy change " + ch.ID, Err: err}
	}
	if err := d.Save(); err != nil {
		return &httpapi.Error{Kind: httpapi.KindInternal, Msg: "writing policy version to the trust directory", Err: err}
	}
	load := m.cfg.Load
	if load == nil {
		cur := m.cfg.Coordinator.Trust().Versions()
		load = func() (*policy.Trust, error) {
			return policy.Load(m.cfg.TrustDir, policy.LoadOptions{Now: m.cfg.Clock(), Trusted: cur})
		}
	}
	nt, err := load()
	if err != nil {
		return &httpapi.Error{Kind: httpapi.KindInternal, Msg: "the trust directory does not verify after publishing " + ch.ID, Err: err}
	}
	m.owed = &unlogged{ch: ch, trust: nt}
	return m.finish(ctx)
}

// unlogged is a policy version written to the trust directory whose
// change is not yet recorded as published with its ledger entries. It is
// enforced (and served through TUF) only once it is, so no version takes
// effect unrecorded.
type unlogged struct {
	ch    *client.Change
	trust *policy.Trust
}

// finish completes a publication: it appends the version's ledger entries,
// then enforces the version and records the change as published. While
// the entries cannot be appended it fails with KindUnavailable, and the
// manager accepts no new proposal or approval (every call and [Manager.Run]
// retry). Called with m.mu held.
func (m *Manager) finish(ctx context.Context) error {
	o := m.owed
	if o == nil {
		return nil
	}
	pub, err := m.markPublished(ctx, o.ch.ID, o.trust.Version())
	if err != nil {
		m.log.Error("policy written to the trust directory but not yet recorded; it takes effect once it is", zap.String("change", o.ch.ID), zap.Int64("policyVersion", o.trust.Version()), zap.Error(err))
		return &httpapi.Error{Kind: httpapi.KindUnavailable, Err: err, Msg: fmt.Sprintf(
			"policy version %d is written to the trust directory but not yet recorded in the store and the ledger: it takes effect once it is, and no policy change is accepted until then (retrying)", o.trust.Version())}
	}
	m.owed = nil
	if err := m.cfg.Coordinator.SetTrust(o.trust); err != nil {
		m.log.Error("policy published but not fully applied", zap.String("change", o.ch.ID), zap.Error(err))
	}
	m.supersedeLate(ctx, pub, o.trust.Version())
	*o.ch = *pub
	m.log.Info("policy change published", zap.String("change", pub.ID), zap.Int64("policyVersion", o.trust.Version()))
	return nil
}

// supersession is what publishing c as version at now supersedes: with
// c.Spec.SupersedePending, the pending requests of the gates it affects
// (c.Supersedes) opened under an earlier version, each logged as
// request.superseded naming the change and the version; nil otherwise.
func supersession(c *client.Change, version int64, now time.Time) *signer.Supersession {
	if !c.Spec.SupersedePending || len(c.Supersedes) == 0 {
		return nil
	}
	id := c.ID
	reason := fmt.Sprintf("superseded by policy version %d (policy change %s, published with --supersede-pending)", version, id)
	return &signer.Supersession{Gates: slices.Clone(c.Supersedes), OpenedBefore: version, Reason: reason, At: now,
		Logged: func(r *signer.Request) ([]ledger.Event, error) {
			return []ledger.Event{signer.SupersededEvent(r, id, version, r.StateReason)}, nil
		}}
}

// supersedeLate supersedes, once the coordinator enforces ch's version,
// the requests of its gates opened under an earlier version between the
// publication's transaction and then (the publication's own supersession
// took those before it). A failure is logged: the publication stands.
func (m *Manager) supersedeLate(ctx context.Context, ch *client.Change, version int64) {
	if !ch.Spec.SupersedePending || len(ch.Supersedes) == 0 {
		return
	}
	now := m.cfg.Clock().UTC()
	_, err := m.changes.UpdateChange(ctx, ch.ID, func(c *client.Change) (signer.ChangeUpdate, error) {
		if c.State != client.ChangePublished {
			return signer.ChangeUpdate{}, nil
		}
		return signer.ChangeUpdate{Supersede: supersession(c, version, now)}, nil
	})
	if err != nil {
		m.log.Error("superseding the requests opened while policy change was being published", zap.String("change", ch.ID), zap.Error(err))
	}
}

// AffectedGates lists, sorted, the gates a policy change from base to
// proposed affects: a gate added or removed, whose roles differ, one of
// whose roles has other keys (by identity) or another threshold, or whose
// provenance requirement differs.
func AffectedGates(base, proposed *metadata.Metadata[metadata.TargetsType]) ([]string, error) {
	var (
		sets [2]*roles.Set
		reqs [2]map[string]provenance.Requirements
	)
	for i, md := range []*metadata.Metadata[metadata.TargetsType]{base, proposed} {
		var err error
		if sets[i], err = policy.RolesOf(md); err != nil {
			return nil, err
		}
		if reqs[i], err = policy.ProvenanceRequirementsOf(md); err != nil {
			return nil, err
		}
	}
	b, p := sets[0], sets[1]
	var out []string
	for _, name := range unionKeys(b.Gates, p.Gates) {
		bg, pg := b.Gates[name], p.Gates[name]
		if bg == nil || pg == nil || !sameStrings(bg.Roles, pg.Roles) {
			out = append(out, name)
			continue
		}
		br, bok := reqs[0][name]
		pr, pok := reqs[1][name]
		if bok != pok || !sameRequirements(br, pr) {
			out = append(out, name)
			continue
		}
		for _, r := range bg.Roles {
			if !sameRole(b, p, r) {
				out = append(out, name)
				break
			}
		}
	}
	return out, nil
}

// sameRequirements reports whether a and b allow the same provenance (each
// list compared as a set).
func sameRequirements(a, b provenance.Requirements) bool {
	return sameStrings(a.Builders, b.Builders) && sameStrings(a.Sources, b.Sources) && sameStrings(a.Refs, b.Refs) &&
		sameStrings(a.BuildTypes, b.BuildTypes) && sameStrings(a.Tools, b.Tools)
}

func unionKeys[V any](a, b map[string]V) []string {
	var ks []string
	for k := range a {
		ks = append(ks, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			ks = append(ks, k)
		}
	}
	slices.Sort(ks)
	return ks
}

func sameStrings(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// sameRole reports whether role name has the same threshold, keys (by
// identity) and keyless identities in both sets.
func sameRole(base, proposed *roles.Set, name string) bool {
	br, pr := base.Roles[name], proposed.Roles[name]
	if br == nil || pr == nil {
		return br == pr
	}
	idents := func(s *roles.Set, r *roles.Role) []string {
		var out []string
		for _, id := range r.KeyIDs {
			if k, ok := s.Keys[id]; ok {
				out = append(out, k.Identity().String())
			} else {
				out = append(out, "keyid:"+id)
			}
		}
		for _, ki := range r.Identities {
			out = append(out, fmt.Sprintf("keyless:%+v", ki))
		}
		return out
	}
	return br.Threshold == pr.Threshold && sameStrings(idents(base, br), idents(proposed, pr))
}

// Run retries, every interval, a publication whose ledger entries could
// not be appended, until ctx is done.
func (m *Manager) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.mu.Lock()
			_ = m.finish(ctx) // finish logs a failure
			m.mu.Unlock()
		}
	}
}

// publishedEvents are the ledger events of publishing ch:
// policy.published (and key.revoked); nil without a ledger.
func (m *Manager) publishedEvents(ch *client.Change) ([]ledger.Event, error) {
	if m.ls == nil {
		return nil, nil
	}
	events := []ledger.Event{{Type: ledger.PolicyPublished, PolicyVersion: ch.Version, PayloadSHA256: ch.Digest,
		EnvelopeSHA256: hexSHA256(ch.Targets), Detail: map[string]string{"change": ch.ID}}}
	if rv := ch.Spec.Revoke; rv != nil {
		proposed, err := policy.ParseTargets(ch.Targets)
		if err != nil {
			return nil, fmt.Errorf("policy change %s holds a malformed policy: %w", ch.ID, err)
		}
		if lc, err := policy.LifecycleOf(proposed); err == nil {
			for _, r := range lc.Revocations {
				if strings.HasPrefix(r.KeyID, strings.ToLower(rv.KeyID)) {
					events = append(events, ledger.Event{Type: ledger.KeyRevoked, KeyID: r.KeyID, PolicyVersion: ch.Version,
						Detail: map[string]string{"since": r.Since.UTC().Format(time.RFC3339Nano), "reason": r.Reason}})
				}
			}
		}
	}
	return events, nil
}

// Recover prepares the manager before the coordinator serves. It imports
// the change requests an earlier version kept as files
// (StateDir/policy-changes/*.json) into the store, once (the folder is
// then renamed policy-changes.imported), and settles every pending change:
// a publication interrupted after the trust directory was written (the
// version now enforced is the one a pending change proposes) is recorded
// as published with its ledger entries here, so the coordinator serves no
// policy version its ledger lacks.
func (m *Manager) Recover(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.importFiles(ctx); err != nil {
		return err
	}
	chs, err := m.changes.ListChanges(ctx)
	if err != nil {
		return fmt.Errorf("policychange: listing policy changes: %w", err)
	}
	for _, ch := range chs {
		if _, err := m.settle(ctx, ch); err != nil {
			return fmt.Errorf("policychange: settling policy change %s: %w", ch.ID, err)
		}
	}
	return nil
}

// importFiles moves the change request files of StateDir/ChangesDir into
// the store.
func (m *Manager) importFiles(ctx context.Context) error {
	if m.cfg.StateDir == "" {
		return nil
	}
	dir := filepath.Join(m.cfg.StateDir, ChangesDir)
	names, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(names) == 0 {
		return err
	}
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err != nil {
			return fmt.Errorf("policychange: importing %s: %w", n, err)
		}
		var ch client.Change
		if err := json.Unmarshal(data, &ch); err != nil || !validChangeID(ch.ID) || ch.ID != client.ChangeIDPrefix+strings.TrimSuffix(filepath.Base(n), ".json") {
			return fmt.Errorf("policychange: importing %s: not a policy change request (%v)", n, err)
		}
		if err := m.changes.CreateChange(ctx, &ch); err != nil && !errors.Is(err, signer.ErrExists) {
			return fmt.Errorf("policychange: importing %s: %w", n, err)
		}
	}
	if err := os.Rename(dir, dir+".imported"); err != nil {
		return fmt.Errorf("policychange: imported %d policy changes but could not rename %s: %w", len(names), dir, err)
	}
	m.log.Info("policy change requests imported from files into the store", zap.Int("changes", len(names)), zap.String("from", dir))
	return nil
}

// affectedBy lists complete requests with a signature by k whose logged
// time (or, without a log, received time) is at or after since.
func (m *Manager) affectedBy(ctx context.Context, t *policy.Trust, k *keys.PublicKey, since time.Time) (*client.Affected, error) {
	max := m.cfg.MaxAffected
	if max <= 0 {
		max = 1000
	}
	a := &client.Affected{Basis: "received", Since: since.UTC(), Requests: []client.AffectedRequest{},
		Note: "the coordinator keeps no transparency log: times are when it received each signature; verifiers without a log bundle count no signature of a revoked key, whatever its time"}
	if m.ls != nil {
		a.Basis = "logged"
		a.Note = "times are the transparency log's; verifiers count a signature of the revoked key only with a log bundle proving it was logged before since"
	}
	ident := k.Identity().String()
	after := ""
	for {
		rs, err := m.cfg.Store.ListRequests(ctx, signer.ListOptions{State: signer.Complete, Limit: 500, After: after})
		if err != nil {
			return nil, storeerr.Kinded(err, "")
		}
		for _, r := range rs {
			for _, p := range r.Signatures {
				if p.Identity != ident {
					continue
				}
				at := p.Received
				if m.ls != nil {
					es, _, err := ledger.ReadEntries(ctx, m.ls.Ledger(), p.LogIndex, p.LogIndex+1)
					if err != nil {
						return nil, &httpapi.Error{Kind: httpapi.KindInternal, Msg: "reading the logged time of a signature of request " + r.ID, Err: err}
					}
					at = es[0].Time
				}
				if at.Before(since) {
					continue
				}
				if len(a.Requests) >= max {
					a.Truncated = true
					return a, nil
				}
				a.Requests = append(a.Requests, client.AffectedRequest{ID: r.ID, Gate: r.Gate, PolicyVersion: r.PolicyVersion, KeyID: p.KeyID, Time: at.UTC(),
					StillVerifies: stillMet(t, r, ident)})
			}
		}
		if len(rs) < 500 {
			return a, nil
		}
		after = rs[len(rs)-1].ID
	}
}

// stillMet reports whether r's other signatures meet its gate under the
// policy version r was signed under, without those of identity ident.
func stillMet(t *policy.Trust, r *signer.Request, ident string) bool {
	pv, err := t.PolicyAt(t.Source(), r.PolicyVersion, r.PolicyDigest)
	if err != nil {
		return false
	}
	tally, err := pv.Roles.NewTally(r.Gate)
	if err != nil {
		return false
	}
	for _, p := range r.Signatures {
		if p.Identity == ident {
			continue
		}
		if k, ok := pv.Roles.Keys[p.KeyID]; ok {
			_, _ = tally.Add(k)
		}
	}
	return tally.Satisfied()
}

func hexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
