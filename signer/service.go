// Package signer is the coordinator: it holds signing requests, verifies
// each partial signature as it arrives, and emits the composite attestation
// once every role of the request's gate has met its threshold.
//
// # Guarantees
//
//   - A request fixes its payload at opening: an in-toto Statement binding the
//     request ID, gate, policy version and digest, subjects and expiry. A
//     partial signature is over that payload's DSSE PAE, so it cannot be
//     replayed into another request or under another policy.
//   - Opening a request needs a valid signature by a key of a role of the
//     gate; it counts as that key's partial signature. There are no
//     anonymous state changes: cancelling also needs a policy key's signature.
//   - A partial signature is stored only after it verifies against the
//     request's PAE with a key of a role of the gate; one public key counts
//     once per request, whatever key ID it is posted under.
//   - The composite envelope is emitted exactly once, inside the store
//     transaction that records the signature completing it (see [Store]).
//   - A signature is acknowledged only once the store has made it durable.
//
// [Coordinator] is safe for concurrent use. The HTTP API over it is in http.go.
package signer

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"go.uber.org/zap"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/keys/keyless"
	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/roles"
	"github.com/quorate-dev/quorate/signer/client"
	"github.com/quorate-dev/quorate/signer/internal/httpapi"
	"github.com/quorate-dev/quorate/signer/internal/storeerr"
	"github.com/quorate-dev/quorate/signer/ledgerapi"
	"github.com/quorate-dev/quorate/signer/tufrepo"
)

// Kind classifies coordinator errors; the HTTP layer maps kinds to
// statuses and metrics label rejections with them.
type Kind = httpapi.Kind

// Error kinds.
const (
	KindInvalid       = httpapi.KindInvalid
	KindUnauthorized  = httpapi.KindUnauthorized
	KindNotFound      = httpapi.KindNotFound
	KindDuplicate     = httpapi.KindDuplicate
	KindNotPending    = httpapi.KindNotPending
	KindStalePolicy   = httpapi.KindStalePolicy
	KindTooLarge      = httpapi.KindTooLarge
	KindUnavailable   = httpapi.KindUnavailable
	KindInternal      = httpapi.KindInternal
	KindBadSignature  = httpapi.KindBadSignature
	KindPolicyExpired = httpapi.KindPolicyExpired
	KindProvenance    = httpapi.KindProvenance
)

// Error is a coordinator error with a kind and a message for the client.
type Error = httpapi.Error

var errorf = httpapi.Errorf

// KindOf returns the kind of err (KindInternal when it has none).
func KindOf(err error) Kind { return httpapi.KindOf(err) }

// Config configures a [Coordinator].
type Config struct {
	Trust  *policy.Trust
	Store  Store
	Logger *zap.Logger
	Clock  func() time.Time
	// MaxTTL bounds how far in the future a request may expire (default 30 days).
	MaxTTL time.Duration
	// ClockSkew is how far a requester's "created" time may be from the
	// coordinator's (default 10 minutes).
	ClockSkew time.Duration
	Limits    attest.Limits
	Metrics   *Metrics // nil for none
	// Ledger is the transparency log; with it, Store must be a [LedgerStore]
	// opened with the same log.
	Ledger *ledger.Log
	// TUF, when set, serves the policy as a TUF repository; SetTrust
	// updates it.
	TUF *tufrepo.Repo
	// WriteFailureWindow is how long after a failed store write [Coordinator.Ready]
	// reports not ready, unless a write succeeds first (default
	// [DefaultWriteFailureWindow]).
	WriteFailureWindow time.Duration
}

// Coordinator is the threshold-signing coordinator: it opens signing
// requests, accepts partial signatures (checked against the policy),
// emits the composite attestation once every role's threshold is met,
// cancels and expires requests, and records each step in the ledger
// (through a [LedgerStore]) when it keeps one. It holds no signing key of
// its own for releases.
type Coordinator struct {
	cfg     Config
	log     *zap.Logger
	metrics *Metrics

	mu        sync.RWMutex
	cache     map[string]*cached // immutable facts of recent requests
	cacheUsed int                // bytes of PAE in cache

	ls     LedgerStore       // nil without a ledger
	ledger *ledgerapi.Server // nil without a ledger
	trust  atomic.Pointer[policy.Trust]
	fail   failState
	// memoEntries counts the entries of all cached facts' memos of
	// verified signatures (see verifiedMemo).
	memoEntries atomic.Int64
}

// cached holds what verifying a signature needs, which never changes for a request.
type cached struct {
	pae           []byte
	digests       sync.Map // crypto.Hash -> []byte
	verified      verifiedMemo
	gate          string
	policyVersion int64
	policyDigest  string // hex SHA-256 of the version's targets.json
	expires       time.Time
	created       time.Time
}

// The cache of request facts holds at most cacheMax entries and
// cacheBytes bytes of PAE; a request whose PAE is over cacheEntryBytes is
// not cached (its signatures read it from the store), so that pending
// large requests do not pin their payloads in memory.
const (
	cacheMax        = 8192
	cacheBytes      = 32 << 20
	cacheEntryBytes = 256 << 10
)

// New returns a coordinator over cfg.
func New(cfg Config) (*Coordinator, error) {
	if cfg.Trust == nil || cfg.Store == nil {
		return nil, errors.New("signer: Trust and Store are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.MaxTTL <= 0 {
		cfg.MaxTTL = 30 * 24 * time.Hour
	}
	if cfg.ClockSkew <= 0 {
		cfg.ClockSkew = 10 * time.Minute
	}
	if cfg.Limits == (attest.Limits{}) {
		cfg.Limits = attest.DefaultLimits
	}
	if cfg.WriteFailureWindow <= 0 {
		cfg.WriteFailureWindow = DefaultWriteFailureWindow
	}
	s := &Coordinator{cfg: cfg, log: cfg.Logger, metrics: cfg.Metrics, cache: map[string]*cached{}}
	s.trust.Store(cfg.Trust)
	s.metrics.initGates(cfg.Trust)
	if cfg.Ledger != nil {
		ls, ok := cfg.Store.(LedgerStore)
		if !ok {
			return nil, errors.New("signer: a transparency log needs a store that keeps it (LedgerStore)")
		}
		s.ls = ls
		s.ledger = ledgerapi.New(ledgerapi.Config{Ledger: cfg.Ledger, Store: ls, Logger: s.log, OnFork: s.metrics.logFork, OnState: s.metrics.logState})
	}
	return s, nil
}

// Trust returns the policy the coordinator enforces.
func (s *Coordinator) Trust() *policy.Trust { return s.trust.Load() }

// SetTrust makes the coordinator enforce a new policy (say, after a
// rotation). It refuses an older root or policy version than the current
// one. Pending requests opened under another policy version then refuse
// new signatures (KindStalePolicy).
func (s *Coordinator) SetTrust(t *policy.Trust) error {
	old := s.trust.Load()
	if t.Root.Signed.Version < old.Root.Signed.Version || t.Version() < old.Version() {
		return fmt.Errorf("refusing to roll the coordinator's policy back from root v%d / policy v%d to root v%d / policy v%d",
			old.Root.Signed.Version, old.Version(), t.Root.Signed.Version, t.Version())
	}
	s.trust.Store(t)
	s.metrics.initGates(t)
	s.log.Info("policy updated", zap.Int64("policyVersion", t.Version()), zap.Int64("rootVersion", t.Root.Signed.Version))
	if s.cfg.TUF != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := s.cfg.TUF.Update(ctx, t); err != nil {
			return fmt.Errorf("policy version %d is enforced, but the TUF repository could not follow it: %w", t.Version(), err)
		}
	}
	return nil
}

// Ledger returns the serving side of the ledger (checkpoints, entries,
// proofs, bundles), or nil when the coordinator keeps none.
func (s *Coordinator) Ledger() *ledgerapi.Server { return s.ledger }

// tufRepo returns the TUF repository, or nil.
func (s *Coordinator) tufRepo() *tufrepo.Repo { return s.cfg.TUF }

// Open checks and stores a new request, with the requester's signature as
// its first partial signature.
func (s *Coordinator) Open(ctx context.Context, in client.OpenInput) (*Request, error) {
	now := s.cfg.Clock()
	if err := s.checkPolicyFresh(s.Trust(), now); err != nil {
		return nil, err
	}
	if in.PayloadType != attest.PayloadType {
		return nil, errorf(KindInvalid, "payloadType %q is not %s", in.PayloadType, attest.PayloadType)
	}
	payload, err := attest.DecodeBase64(in.Payload)
	if err != nil {
		return nil, errorf(KindInvalid, "payload: %w", err)
	}
	if int64(len(payload)) > s.cfg.Limits.MaxBytes {
		return nil, errorf(KindTooLarge, "payload of %d bytes is over the %d-byte limit", len(payload), s.cfg.Limits.MaxBytes)
	}
	st, pred, err := attest.ParseStatement(payload, s.cfg.Limits)
	if err != nil {
		if errors.Is(err, attest.ErrTooLarge) {
			return nil, errorf(KindTooLarge, "%w", err)
		}
		return nil, errorf(KindInvalid, "%w", err)
	}
	t := s.Trust()
	if _, ok := t.Roles.Gates[pred.Gate]; !ok {
		return nil, errorf(KindInvalid, "gate %q is not in policy version %d", pred.Gate, t.Version())
	}
	if pred.Policy.Version != t.Version() || pred.Policy.Digest["sha256"] != t.Digest {
		return nil, errorf(KindStalePolicy, "statement names policy version %d (sha256:%s); the coordinator enforces version %d (sha256:%s)", pred.Policy.Version, pred.Policy.Digest["sha256"], t.Version(), t.Digest)
	}
	if !validID(pred.RequestID) {
		return nil, errorf(KindInvalid, "requestId must be 16-128 characters of [A-Za-z0-9._-]")
	}
	if !pred.Expires.After(now) {
		return nil, errorf(KindInvalid, "expires %s is not in the future", pred.Expires.Format(time.RFC3339))
	}
	if pred.Expires.Sub(now) > s.cfg.MaxTTL {
		return nil, errorf(KindInvalid, "expires %s is further than the coordinator's maximum of %s", pred.Expires.Format(time.RFC3339), s.cfg.MaxTTL)
	}
	if d := pred.Created.Sub(now); d > s.cfg.ClockSkew || d < -s.cfg.ClockSkew {
		return nil, errorf(KindInvalid, "created %s is more than %s from the coordinator's clock", pred.Created.Format(time.RFC3339), s.cfg.ClockSkew)
	}
	c := &cached{pae: dsse.PAE(in.PayloadType, payload), gate: pred.Gate, policyVersion: pred.Policy.Version, policyDigest: pred.Policy.Digest["sha256"], expires: pred.Expires, created: now}
	if keyless.IsKeyID(in.Signature.KeyID) {
		return nil, errorf(KindInvalid, "a keyless signature cannot open a request (the requester is named by a key of the policy); it may sign one")
	}
	k, role, raw, err := s.checkSignature(t, t.Roles, c, in.Signature)
	if err == nil {
		err = refusedByLifecycle(t, k, now)
	}
	if err != nil {
		return nil, err
	}
	// After the signature: only a party of the gate is told (and counted).
	if err := s.checkProvenance(t, st.Subject, pred); err != nil {
		return nil, err
	}
	r := &Request{
		ID: pred.RequestID, Gate: pred.Gate, PolicyVersion: pred.Policy.Version, PolicyDigest: pred.Policy.Digest["sha256"],
		PayloadType: in.PayloadType, Payload: payload, Subjects: st.Subject, Requester: k.ID(),
		Created: now.UTC(), Expires: pred.Expires.UTC(), State: Pending, Updated: now.UTC(),
		Signatures: []Partial{{KeyID: k.ID(), Identity: k.Identity().String(), Role: role, Sig: raw, Received: now.UTC()}},
	}
	// A gate satisfied by the requester alone completes at once.
	if env, err := s.composite(t, t.Roles, r, now, nil); err != nil {
		return nil, err
	} else if env != nil {
		r.State, r.Envelope = Complete, env
	}
	err = s.cfg.Store.CreateRequest(ctx, r, CreatedEvents(r))
	s.wrote(err)
	if err != nil {
		return nil, storeError(err, r.ID)
	}
	s.remember(r.ID, c)
	s.metrics.opened()
	if r.State == Complete {
		s.metrics.emitted(0)
		s.metrics.composite(gateLabel(t, r.Gate), pred.Provenance != nil)
	}
	s.log.Info("request opened", zap.String("request", r.ID), zap.String("gate", r.Gate), zap.String("requester", r.Requester), zap.Int("subjects", len(r.Subjects)))
	return r, nil
}

func validID(id string) bool {
	if len(id) < 16 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// checkPartial checks a partial signature arriving at now (see
// checkSignature and checkKeyless) and returns it as the store keeps it.
// set holds the roles of the request's policy version ([Coordinator.rolesFor]);
// the enforced policy t's revocations and retirements apply to the key.
func (s *Coordinator) checkPartial(t *policy.Trust, set *roles.Set, c *cached, sig attest.Signature, now time.Time) (Partial, error) {
	if keyless.IsKeyID(sig.KeyID) {
		return s.checkKeyless(set, c, sig, now)
	}
	k, role, raw, err := s.checkSignature(t, set, c, sig)
	if err == nil {
		err = refusedByLifecycle(t, k, now)
	}
	if err != nil {
		return Partial{}, err
	}
	return Partial{KeyID: k.ID(), Identity: k.Identity().String(), Role: role, Sig: raw, Received: now.UTC()}, nil
}

// checkKeyless checks a keyless partial signature (package keyless) as the
// verifier will: its certificate chains to the policy's Fulcio authorities
// at now, the time the ledger logs it on acceptance (the store appends the
// signature.accepted entry in the same transaction, with Received = now);
// its issuer and subject match an identity of a role of the request's
// gate; the leaf's key verifies the signature over the request's PAE. The
// partial's identity is the listed identity's, so the store counts each
// identity once.
func (s *Coordinator) checkKeyless(set *roles.Set, c *cached, sig attest.Signature, now time.Time) (Partial, error) {
	cert, err := keyless.Verify(sig.KeyID, set.Fulcio, now)
	if err != nil {
		return Partial{}, errorf(KindUnauthorized, "keyless signature: %v", err).Because(policy.ErrUntrustedCertificate)
	}
	tally, err := set.NewTally(c.gate)
	if err != nil {
		return Partial{}, errorf(KindInvalid, "%w", err)
	}
	role, id, err := tally.KeylessRole(cert.Issuer, cert.Subject)
	if err != nil {
		return Partial{}, errorf(KindUnauthorized, "%w", err).Because(policy.ErrNotInGate)
	}
	raw, err := attest.DecodeBase64(sig.Sig)
	if err != nil || len(raw) == 0 {
		return Partial{}, errorf(KindInvalid, "signature.sig is not base64")
	}
	start := time.Now()
	err = cert.Key.Verify(c.pae, raw)
	s.metrics.verified(time.Since(start))
	if err != nil {
		return Partial{}, errorf(KindBadSignature, "keyless signature of %s does not verify over this request's payload (DSSE PAE) with its certificate's key", cert.Subject).Because(policy.ErrBadSignature)
	}
	return Partial{KeyID: sig.KeyID, Identity: roles.KeylessIdentity(id).String(), Role: role, Sig: raw, Received: now.UTC()}, nil
}

// checkSignature verifies sig over the request's PAE with a key that holds a
// role of the request's gate. It does not consult the store.
func (s *Coordinator) checkSignature(t *policy.Trust, set *roles.Set, c *cached, sig attest.Signature) (*keys.PublicKey, string, []byte, error) {
	if sig.KeyID == "" {
		return nil, "", nil, errorf(KindInvalid, "signature.keyid is empty")
	}
	k, ok := set.Keys[sig.KeyID]
	if !ok {
		return nil, "", nil, errorf(KindUnauthorized, "key %s is not in policy version %d", keys.Short(sig.KeyID), c.policyVersion).Because(policy.ErrNotInPolicy)
	}
	role := set.RoleOf(c.gate, k.Identity())
	if role == "" {
		tally, err := set.NewTally(c.gate)
		if err != nil {
			return nil, "", nil, errorf(KindInvalid, "%w", err)
		}
		_, err = tally.Role(k)
		return nil, "", nil, errorf(KindUnauthorized, "%w", err).Because(policy.ErrNotInGate)
	}
	raw, err := attest.DecodeBase64(sig.Sig)
	if err != nil || len(raw) == 0 {
		return nil, "", nil, errorf(KindInvalid, "signature.sig is not base64")
	}
	start := time.Now()
	var digest []byte
	if d, ok := c.digests.Load(k.Hash()); ok {
		digest = d.([]byte)
	} else {
		digest = k.Digest(c.pae)
		c.digests.Store(k.Hash(), digest)
	}
	err = k.VerifyDigest(digest, raw)
	s.metrics.verified(time.Since(start))
	if err != nil {
		s.metrics.tamper(gateLabel(t, c.gate), tamperPartial)
		return nil, "", nil, errorf(KindBadSignature, "signature by key %s does not verify over this request's payload (DSSE PAE)", keys.Short(k.ID())).Because(policy.ErrBadSignature)
	}
	c.verified.add(k, digest, raw)
	return k, role, raw, nil
}

// composite returns the composite envelope when r's signatures satisfy its
// gate, or nil. Before returning one it checks it as a verifier would
// ([Coordinator.checkComposite]).
//
// memo holds the signatures verified on arrival (nil: none), which the
// check need not verify again.
func (s *Coordinator) composite(t *policy.Trust, set *roles.Set, r *Request, now time.Time, memo *verifiedMemo) ([]byte, error) {
	tally, err := set.NewTally(r.Gate)
	if err != nil {
		return nil, errorf(KindInternal, "%w", err)
	}
	// Count first; encode only a composite that meets the gate (this runs
	// on every signature, in the store's writer).
	counted := make([]int, 0, len(r.Signatures))
	for i, p := range r.Signatures {
		if keyless.IsKeyID(p.KeyID) {
			cert, err := keyless.Verify(p.KeyID, set.Fulcio, p.Received)
			if err != nil {
				continue
			}
			if _, err := tally.AddKeyless(cert.Issuer, cert.Subject); err != nil {
				continue
			}
			counted = append(counted, i)
			continue
		}
		k, ok := set.Keys[p.KeyID]
		if !ok || refusedByLifecycle(t, k, p.Received) != nil {
			continue
		}
		if _, err := tally.Add(k); err != nil {
			continue
		}
		counted = append(counted, i)
	}
	if !tally.Satisfied() {
		return nil, nil
	}
	env := attest.NewEnvelope(nil)
	env.Payload = base64.StdEncoding.EncodeToString(r.Payload)
	env.Signatures = make([]attest.Signature, 0, len(counted))
	for _, i := range counted {
		p := r.Signatures[i]
		env.Signatures = append(env.Signatures, attest.Signature{KeyID: p.KeyID, Sig: base64.StdEncoding.EncodeToString(p.Sig)})
	}
	data, err := attest.Encode(env)
	if err != nil {
		return nil, err
	}
	if err := s.checkComposite(t, r, data, now, memo); err != nil {
		return nil, err
	}
	return data, nil
}

// facts returns the immutable facts of a request, from the cache or the store.
func (s *Coordinator) facts(ctx context.Context, id string) (*cached, error) {
	s.mu.RLock()
	c := s.cache[id]
	s.mu.RUnlock()
	if c != nil {
		return c, nil
	}
	r, err := s.cfg.Store.GetRequestRow(ctx, id)
	if err != nil {
		return nil, storeError(err, id)
	}
	c = &cached{pae: dsse.PAE(r.PayloadType, r.Payload), gate: r.Gate, policyVersion: r.PolicyVersion, policyDigest: r.PolicyDigest, expires: r.Expires, created: r.Created}
	s.remember(id, c)
	return c, nil
}

func (s *Coordinator) remember(id string, c *cached) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(c.pae) > cacheEntryBytes {
		return
	}
	drop := func(k string, v *cached) {
		delete(s.cache, k)
		s.cacheUsed -= len(v.pae)
		v.verified.detach()
	}
	if old := s.cache[id]; old != nil {
		drop(id, old)
	}
	if len(s.cache) >= cacheMax {
		// Drop a random eighth; map iteration order is random enough.
		n := cacheMax / 8
		for k, v := range s.cache {
			drop(k, v)
			if n--; n == 0 {
				break
			}
		}
	}
	for k, v := range s.cache {
		if s.cacheUsed+len(c.pae) <= cacheBytes {
			break
		}
		drop(k, v)
	}
	c.verified.attach(&s.memoEntries)
	s.cache[id] = c
	s.cacheUsed += len(c.pae)
}

// SignResult is the outcome of an accepted partial signature.
type SignResult struct {
	Request *Request
	Role    string
	// Completed is true when this signature completed the request.
	Completed bool
	// AlreadySigned is true when the key (by identity, not signature
	// bytes: ECDSA signatures differ on each try) had already signed the
	// request: nothing new was stored or counted, the recorded signature
	// counts.
	AlreadySigned bool
	// Recorded is when the signature that counts was received: this one,
	// or the earlier one when AlreadySigned.
	Recorded time.Time
}

// Sign verifies and durably records a partial signature for request id.
func (s *Coordinator) AddSignature(ctx context.Context, id string, sig attest.Signature) (*SignResult, error) {
	res, err := s.sign(ctx, id, sig)
	if err != nil {
		s.metrics.rejected(KindOf(err))
		return nil, err
	}
	return res, nil
}

func (s *Coordinator) sign(ctx context.Context, id string, sig attest.Signature) (*SignResult, error) {
	now := s.cfg.Clock()
	t := s.Trust()
	if err := s.checkPolicyFresh(t, now); err != nil {
		return nil, err
	}
	hide := s.fail.hide.Load()
	c, err := s.facts(ctx, id)
	if err != nil {
		if hide && KindOf(err) == KindNotFound {
			return nil, errNoSuchRequest(id)
		}
		return nil, err
	}
	// A request opened under an earlier policy version the enforced one
	// endorses keeps collecting signatures valid under that version and not
	// revoked or retired by the enforced one, as the verifier checks them.
	set, err := s.rolesFor(t, id, c.policyVersion, c.policyDigest)
	if err != nil {
		if hide {
			return nil, errNoSuchRequest(id)
		}
		return nil, err
	}
	// With hiding on, the signature is checked before anything that would
	// tell a caller without a valid one that the request exists.
	var p Partial
	if hide {
		if p, err = s.checkPartial(t, set, c, sig, now); err != nil {
			return nil, errNoSuchRequest(id)
		}
	}
	if !now.Before(c.expires) {
		return nil, errorf(KindNotPending, "request %s expired at %s", id, c.expires.Format(time.RFC3339)).Because(policy.ErrExpired)
	}
	if !hide {
		if p, err = s.checkPartial(t, set, c, sig, now); err != nil {
			return nil, err
		}
	}
	role := p.Role
	completed := false
	// The coordinator decides what the store records: the composite when
	// this signature completes the request, and the ledger events of both.
	r, err := s.cfg.Store.AddSignature(ctx, id, p, func(r *Request) (Finish, error) {
		// The transaction may run a little later: check the policy again
		// at the time the composite would be emitted.
		at := s.cfg.Clock()
		if err := s.checkPolicyFresh(t, at); err != nil {
			return Finish{}, err
		}
		env, err := s.composite(t, set, r, at, &c.verified)
		if err != nil {
			return Finish{}, err
		}
		completed = env != nil
		return Finished(r, env), nil
	})
	s.wrote(err)
	if err != nil {
		err = storeError(err, id)
		if again := s.signedBefore(ctx, id, p.Identity, err); again != nil {
			return again, nil
		}
		return nil, s.notPending(ctx, id, err)
	}
	completed = completed && r.State == Complete
	s.metrics.accepted()
	if completed {
		c.verified.clear()
		s.metrics.emitted(now.Sub(c.created))
		s.metrics.composite(gateLabel(t, r.Gate), carriesProvenance(r.Payload, s.cfg.Limits))
		s.log.Info("composite attestation emitted", zap.String("request", id), zap.Int("signatures", len(r.Signatures)))
	}
	s.log.Debug("partial signature accepted", zap.String("request", id), zap.String("keyid", p.KeyID), zap.String("role", role))
	recorded := p.Received
	if x := r.SignedBy(p.Identity); x != nil {
		recorded = x.Received // as stored
	}
	return &SignResult{Request: r, Role: role, Completed: completed, Recorded: recorded}, nil
}

// signedBefore answers a signature the store refused (err) as a repeat
// when the key with identity had already signed request id and that
// signature still counts: the request is pending or complete. It returns nil
// otherwise.
func (s *Coordinator) signedBefore(ctx context.Context, id, identity string, err error) *SignResult {
	if k := KindOf(err); k != KindDuplicate && k != KindNotPending {
		return nil
	}
	r, gerr := s.cfg.Store.GetRequest(ctx, id)
	if gerr != nil || (r.State != Pending && r.State != Complete) {
		return nil
	}
	p := r.SignedBy(identity)
	if p == nil {
		return nil
	}
	s.log.Debug("partial signature repeated", zap.String("request", id), zap.String("keyid", p.KeyID))
	return &SignResult{Request: r, Role: p.Role, AlreadySigned: true, Recorded: p.Received}
}

// notPending says, for a signature the store refused (err) because request
// id is no longer pending, which final state it is in and why (a
// superseded request's reason names the policy change); other errors are
// returned as they are.
func (s *Coordinator) notPending(ctx context.Context, id string, err error) error {
	if KindOf(err) != KindNotPending {
		return err
	}
	r, gerr := s.cfg.Store.GetRequest(ctx, id)
	if gerr != nil || r.State == Pending {
		return err
	}
	if r.StateReason == "" {
		return errorf(KindNotPending, "request %s is %s: it accepts no more signatures", id, r.State)
	}
	return errorf(KindNotPending, "request %s is %s (%s): it accepts no more signatures", id, r.State, r.StateReason)
}

func storeError(err error, id string) error { return storeerr.Kinded(err, id) }

// Get returns a request.
func (s *Coordinator) Get(ctx context.Context, id string) (*Request, error) {
	r, err := s.cfg.Store.GetRequest(ctx, id)
	if err != nil {
		return nil, storeError(err, id)
	}
	s.expiredOnRead(s.cfg.Clock(), r)
	return r, nil
}

// List lists requests.
func (s *Coordinator) List(ctx context.Context, opts ListOptions) ([]*Request, error) {
	rs, err := s.cfg.Store.ListRequests(ctx, opts)
	if err != nil {
		return nil, storeError(err, "")
	}
	now := s.cfg.Clock()
	for _, r := range rs {
		s.expiredOnRead(now, r)
	}
	return rs, nil
}

// expiredOnRead shows a pending request past its expiry as expired at once;
// the sweeper ([Coordinator.ExpireDue]) records it later. Such a request
// accepts no signature either way.
// envelope is [Coordinator.Get] without the signatures.
func (s *Coordinator) envelope(ctx context.Context, id string) (*Request, error) {
	r, err := s.cfg.Store.GetRequestRow(ctx, id)
	if err != nil {
		return nil, storeError(err, id)
	}
	s.expiredOnRead(s.cfg.Clock(), r)
	return r, nil
}

func (s *Coordinator) expiredOnRead(now time.Time, r *Request) {
	if r.State == Pending && !now.Before(r.Expires) {
		r.State, r.StateReason = Expired, "at "+r.Expires.UTC().Format(time.RFC3339)
	}
}

// Cancel cancels a pending request. The signature must be by a key of a role
// of the request's gate or by a policy administrator.
func (s *Coordinator) Cancel(ctx context.Context, id string, in client.CancelInput) (*Request, error) {
	// The reason is checked before the request is looked up: the answer
	// depends on the input alone.
	if err := checkCancelReason(in.Reason); err != nil {
		return nil, err
	}
	t := s.Trust()
	if err := s.checkPolicyFresh(t, s.cfg.Clock()); err != nil {
		return nil, err
	}
	c, err := s.facts(ctx, id)
	if err != nil {
		if s.fail.hide.Load() && KindOf(err) == KindNotFound {
			return nil, errNoSuchRequest(id)
		}
		return nil, err
	}
	r, err := s.cancel(ctx, t, c, id, in)
	if err != nil && s.fail.hide.Load() && (KindOf(err) == KindUnauthorized || KindOf(err) == KindBadSignature) {
		return nil, errNoSuchRequest(id)
	}
	return r, err
}

func (s *Coordinator) cancel(ctx context.Context, t *policy.Trust, c *cached, id string, in client.CancelInput) (*Request, error) {
	k, ok := t.Roles.Keys[in.Signature.KeyID]
	if !ok {
		for _, a := range t.RootKeys {
			if a.ID() == in.Signature.KeyID {
				k, ok = a, true
			}
		}
	}
	if !ok {
		return nil, errorf(KindUnauthorized, "key %s may not cancel request %s (not a key of gate %q nor an administrator)", keys.Short(in.Signature.KeyID), id, c.gate).Because(policy.ErrNotInGate)
	}
	if t.Roles.RoleOf(c.gate, k.Identity()) == "" && !isAdmin(t, k) {
		return nil, errorf(KindUnauthorized, "key %s holds no role of gate %q and is not an administrator", keys.Short(k.ID()), c.gate).Because(policy.ErrNotInGate)
	}
	raw, err := attest.DecodeBase64(in.Signature.Sig)
	if err != nil || k.Verify(dsse.PAE(client.CancelPayloadType, client.CancelMessage(id, in.Reason)), raw) != nil {
		return nil, errorf(KindBadSignature, "cancellation signature by key %s does not verify", keys.Short(k.ID())).Because(policy.ErrBadSignature)
	}
	r, err := s.cfg.Store.SetState(ctx, id, Cancelled, fmt.Sprintf("cancelled by %s: %s", keys.Short(k.ID()), in.Reason), s.cfg.Clock().UTC(), LogState)
	s.wrote(err)
	if err != nil {
		return nil, storeError(err, id)
	}
	s.log.Info("request cancelled", zap.String("request", id), zap.String("by", k.ID()))
	return r, nil
}

func isAdmin(t *policy.Trust, k *keys.PublicKey) bool {
	for _, a := range t.RootKeys {
		if a.Identity() == k.Identity() {
			return true
		}
	}
	return false
}

// ExpireDue marks pending requests past their expiry as expired and returns their IDs.
func (s *Coordinator) ExpireDue(ctx context.Context) ([]string, error) {
	now := s.cfg.Clock()
	var out []string
	for {
		rs, err := s.cfg.Store.ListRequests(ctx, ListOptions{State: Pending, ExpiresBefore: now, Limit: 100})
		if err != nil {
			return out, err
		}
		n := 0
		for _, r := range rs {
			if _, err := s.cfg.Store.SetState(ctx, r.ID, Expired, "expired", now.UTC(), LogState); err != nil {
				if errors.Is(err, ErrNotPending) {
					continue
				}
				return out, err
			}
			out = append(out, r.ID)
			n++
		}
		if len(rs) < 100 || n == 0 {
			return out, nil
		}
	}
}

// RunExpiry expires due requests every interval (with jitter) until ctx ends.
func (s *Coordinator) RunExpiry(ctx context.Context, interval time.Duration) {
	for {
		d := interval + time.Duration(rand.Int64N(int64(interval)/4+1))
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
		ids, err := s.ExpireDue(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("expiring requests", zap.Error(err))
		}
		for _, id := range ids {
			s.log.Info("request expired", zap.String("request", id))
		}
	}
}

// progress returns, per role of r's gate, the keys counted so far.
// progress is r's per-role progress under its own policy version's roles
// (an earlier version the enforced one endorses), so a request opened before
// a rotation shows its signers; failing that, under the enforced roles.
func (s *Coordinator) progress(r *Request) []client.RoleStatus {
	t := s.Trust()
	set, err := s.rolesFor(t, r.ID, r.PolicyVersion, r.PolicyDigest)
	if err != nil {
		set = t.Roles
	}
	return Progress(set, r)
}

// rolesFor returns the roles a request opened under policy version (with
// that digest) is signed against: the enforced policy t's, or those of an
// earlier version t endorses (policy.Trust.PolicyAt, read from the trust
// directory's history). A version t does not endorse is stale.
func (s *Coordinator) rolesFor(t *policy.Trust, id string, version int64, digest string) (*roles.Set, error) {
	if version == t.Version() {
		return t.Roles, nil
	}
	pv, err := t.PolicyAt(t.Source(), version, digest)
	if err != nil {
		return nil, errorf(KindStalePolicy, "request %s was opened under policy version %d, which the enforced version %d does not accept: %w: open a new request", id, version, t.Version(), err)
	}
	return pv.Roles, nil
}

// refusedByLifecycle refuses a signature by k made at `at` when the
// enforced policy t revoked the key (compromised) or retired it at or
// before then, saying since when (and why, for a revocation).
func refusedByLifecycle(t *policy.Trust, k *keys.PublicKey, at time.Time) error {
	if t.Lifecycle == nil {
		return nil
	}
	if r, ok := t.Lifecycle.Revoked(k.Identity()); ok && !at.Before(r.Since) {
		return errorf(KindUnauthorized, "key %s is revoked since %s (%s)", keys.Short(k.ID()), r.Since.UTC().Format(time.RFC3339), r.Reason).Because(policy.ErrKeyRevoked)
	}
	if r, ok := t.Lifecycle.RetiredAt(k.Identity()); ok && !at.Before(r.At) {
		return errorf(KindUnauthorized, "key %s is retired since %s", keys.Short(k.ID()), r.At.UTC().Format(time.RFC3339)).Because(policy.ErrKeyRetired)
	}
	return nil
}

// Progress computes per-role progress of r under set.
func Progress(set *roles.Set, r *Request) []client.RoleStatus {
	tally, err := set.NewTally(r.Gate)
	if err != nil {
		return nil
	}
	for _, p := range r.Signatures {
		if k, ok := set.Keys[p.KeyID]; ok {
			_, _ = tally.Add(k)
		}
	}
	var out []client.RoleStatus
	for _, rr := range tally.Results() {
		rs := client.RoleStatus{Role: rr.Role, Threshold: rr.Threshold, Met: rr.Met(), Signed: []string{}}
		if role, ok := set.Roles[rr.Role]; ok {
			rs.Eligible = append([]string(nil), role.KeyIDs...)
		}
		for _, c := range rr.Counted {
			rs.Signed = append(rs.Signed, c.KeyID)
		}
		out = append(out, rs)
	}
	return out
}
