package oci

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/quorate-dev/quorate/attest"
)

// The referrer's layout. See docs/kubernetes.md.
const (
	// ArtifactType is the referrer manifest's artifactType: the DSSE
	// payload type of quorate's composite (an in-toto statement), as
	// in-toto attestations stored in registries use it. cosign v3 uses
	// "application/vnd.dev.sigstore.bundle.v0.3+json" for Sigstore bundles;
	// quorate's composite is not one, so it does not claim that type.
	ArtifactType = attest.PayloadType
	// EnvelopeMediaType is the first layer's media type: the DSSE envelope
	// JSON, byte for byte as signed.
	EnvelopeMediaType = "application/vnd.dsse.envelope.v1+json"
	// BundleMediaType is the optional second layer's: quorate's log bundle.
	BundleMediaType = "application/vnd.quorate.log-bundle.v1+json"
	// EmptyConfigMediaType and emptyConfig are the OCI 1.1 empty descriptor.
	EmptyConfigMediaType = "application/vnd.oci.empty.v1+json"

	// Annotations on the referrer manifest (copied into the referrers
	// listing): hints for listing and filtering, never trusted.
	AnnotationPredicateType = "in-toto.io/predicate-type"
	AnnotationGate          = "dev.quorate.gate"
	AnnotationPolicyVersion = "dev.quorate.policy.version"
	AnnotationRequestID     = "dev.quorate.request-id"
	AnnotationCreated       = "org.opencontainers.image.created"
	annotationTitle         = "org.opencontainers.image.title"
)

var emptyConfig = []byte("{}")

// maxManifestBytes bounds a referrer manifest (the OCI guidance is 4 MiB).
const maxManifestBytes = 4 << 20

// Referrer is an approval found on (or pushed to) a registry.
type Referrer struct {
	// Digest is the referrer manifest's "sha256:…"; Subject the image's.
	Digest, Subject string
	// Gate, PolicyVersion, RequestID and Created are the manifest's
	// annotations: unsigned hints, to be checked against the envelope.
	Gate          string
	PolicyVersion int64
	RequestID     string
	Created       time.Time
	// Envelope is the DSSE envelope; Bundle the log bundle, nil if none.
	// Both hash to the digests the manifest names.
	Envelope, Bundle []byte
}

// Rejected is a referrer candidate that [Client.Find] set aside, and why.
type Rejected struct {
	Digest string
	Err    error
}

// Found is what [Client.Find] returns.
type Found struct {
	Referrers []Referrer
	Rejected  []Rejected
	// Skipped counts candidates past the first [Options.MaxReferrers]
	// fetched (quorate's or not): not examined.
	Skipped int
}

// Attach pushes envelope (a DSSE envelope carrying quorate's release
// approval for img) and its log bundle (nil if none) as a referrer of img.
// It refuses an envelope whose statement has no subject with img's sha256
// digest; the annotations are taken from the statement's predicate. The
// manifest is deterministic, so attaching the same bytes twice yields the
// same referrer. On a registry without the referrers API, the referrers
// tag schema's index ("sha256-<hex>") is updated (read, append, write: two
// concurrent attaches to one image may lose one entry; attach again).
func (c *Client) Attach(ctx context.Context, img *Image, envelope, bundle []byte) (*Referrer, error) {
	ref, err := c.describe(img, envelope, bundle)
	if err != nil {
		return nil, err
	}
	repo, err := c.repository(img.Repository)
	if err != nil {
		return nil, err
	}
	manifest, err := newManifest(img, ref)
	if err != nil {
		return nil, err
	}
	opts := c.remoteOptions(ctx)
	blobs := map[types.MediaType][]byte{EmptyConfigMediaType: emptyConfig, EnvelopeMediaType: envelope}
	if bundle != nil {
		blobs[BundleMediaType] = bundle
	}
	for mt, b := range blobs {
		if err := remote.WriteLayer(repo, static.NewLayer(b, mt), opts...); err != nil {
			return nil, fmt.Errorf("attaching to %s: uploading the %s blob: %w", img.Reference(), mt, err)
		}
	}
	sum := sha256.Sum256(manifest)
	ref.Digest = "sha256:" + hex.EncodeToString(sum[:])
	if err := remote.Put(repo.Digest(ref.Digest), rawManifest(manifest), opts...); err != nil {
		return nil, fmt.Errorf("attaching to %s: pushing the referrer manifest: %w", img.Reference(), err)
	}
	return ref, nil
}

// describe checks that envelope approves img and fills a Referrer from it.
func (c *Client) describe(img *Image, envelope, bundle []byte) (*Referrer, error) {
	if int64(len(envelope)) > c.maxEnv {
		return nil, fmt.Errorf("attaching to %s: envelope of %d bytes is over the %d-byte limit", img.Reference(), len(envelope), c.maxEnv)
	}
	if int64(len(bundle)) > c.maxBundle {
		return nil, fmt.Errorf("attaching to %s: log bundle of %d bytes is over the %d-byte limit", img.Reference(), len(bundle), c.maxBundle)
	}
	want, err := attest.ParseDigest(img.Digest)
	if err != nil || want.Alg != "sha256" {
		return nil, fmt.Errorf("attaching: image digest %q is not sha256:<hex>", img.Digest)
	}
	env, payload, err := attest.ParseEnvelope(envelope, attest.Limits{MaxBytes: c.maxEnv})
	if err != nil {
		return nil, fmt.Errorf("attaching to %s: %w", img.Reference(), err)
	}
	if env.PayloadType != attest.PayloadType {
		return nil, fmt.Errorf("attaching to %s: envelope payloadType %q is not %s", img.Reference(), env.PayloadType, attest.PayloadType)
	}
	st, pred, err := attest.ParseStatement(payload, attest.Limits{})
	if err != nil {
		return nil, fmt.Errorf("attaching to %s: %w", img.Reference(), err)
	}
	if !slices.ContainsFunc(st.Subject, func(s attest.Subject) bool { return s.Matches(want) }) {
		return nil, fmt.Errorf("attaching to %s: the attestation has no subject with digest %s; it does not approve this image", img.Reference(), img.Digest)
	}
	return &Referrer{
		Subject:       img.Digest,
		Gate:          pred.Gate,
		PolicyVersion: pred.Policy.Version,
		RequestID:     pred.RequestID,
		Created:       pred.Created.UTC(),
		Envelope:      envelope,
		Bundle:        bundle,
	}, nil
}

// ociManifest is the referrer manifest as pushed and as read back.
type ociManifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType,omitempty"`
	Config        descriptor        `json:"config"`
	Layers        []descriptor      `json:"layers"`
	Subject       *descriptor       `json:"subject,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

func blobDescriptor(b []byte, mt, title string) descriptor {
	sum := sha256.Sum256(b)
	d := descriptor{MediaType: mt, Digest: "sha256:" + hex.EncodeToString(sum[:]), Size: int64(len(b))}
	if title != "" {
		d.Annotations = map[string]string{annotationTitle: title}
	}
	return d
}

func newManifest(img *Image, r *Referrer) ([]byte, error) {
	m := ociManifest{
		SchemaVersion: 2,
		MediaType:     string(types.OCIManifestSchema1),
		ArtifactType:  ArtifactType,
		Config:        blobDescriptor(emptyConfig, EmptyConfigMediaType, ""),
		Layers:        []descriptor{blobDescriptor(r.Envelope, EnvelopeMediaType, "attestation.dsse.json")},
		Subject:       &descriptor{MediaType: img.MediaType, Digest: img.Digest, Size: img.Size},
		Annotations: map[string]string{
			AnnotationPredicateType: attest.PredicateType,
			AnnotationGate:          r.Gate,
			AnnotationPolicyVersion: strconv.FormatInt(r.PolicyVersion, 10),
			AnnotationRequestID:     r.RequestID,
			AnnotationCreated:       r.Created.Format(time.RFC3339Nano),
		},
	}
	if r.Bundle != nil {
		m.Layers = append(m.Layers, blobDescriptor(r.Bundle, BundleMediaType, "log-bundle.json"))
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encoding the referrer manifest: %w", err)
	}
	return b, nil
}

// rawManifest is a manifest's bytes pushed as they are.
type rawManifest []byte

func (m rawManifest) RawManifest() ([]byte, error)        { return m, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

// Find lists img's referrers (through the referrers API, or the referrers
// tag schema where the registry lacks it) and fetches each quorate
// candidate: its manifest, envelope and bundle, each checked against its
// digest. A candidate whose bytes or layout are wrong is returned in
// Rejected with the reason (a [DigestMismatchError] for tampered bytes),
// never in Referrers. The candidates still need verifying, by package policy.
func (c *Client) Find(ctx context.Context, img *Image) (*Found, error) {
	repo, err := c.repository(img.Repository)
	if err != nil {
		return nil, err
	}
	if _, err := attest.ParseDigest(img.Digest); err != nil {
		return nil, fmt.Errorf("finding referrers: %w", err)
	}
	idx, err := remote.Referrers(repo.Digest(img.Digest), c.remoteOptions(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("listing referrers of %s: %w", img.Reference(), err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("listing referrers of %s: %w", img.Reference(), err)
	}
	fetch, err := c.fetcher(ctx, repo)
	if err != nil {
		return nil, err
	}
	found, fetched := &Found{}, 0
	for _, d := range im.Manifests {
		// The listing is a hint (under the tag schema, a mutable tag): the
		// manifest itself is checked below. Some registries report the
		// config's media type instead of the manifest's artifactType.
		if d.ArtifactType != ArtifactType && d.ArtifactType != EmptyConfigMediaType && d.ArtifactType != "" {
			continue
		}
		// Every fetch counts, a foreign artifact's too: the listing is
		// untrusted and must not make Find fetch without bound.
		if fetched >= c.maxRefs {
			found.Skipped++
			continue
		}
		fetched++
		r, err := c.fetchReferrer(ctx, fetch, img, d)
		if err != nil {
			if errors.Is(err, errNotOurs) {
				continue
			}
			found.Rejected = append(found.Rejected, Rejected{Digest: d.Digest.String(), Err: err})
			continue
		}
		found.Referrers = append(found.Referrers, *r)
	}
	return found, nil
}

var errNotOurs = errors.New("not a quorate referrer")

func (c *Client) fetchReferrer(ctx context.Context, fetch *fetcher, img *Image, d v1.Descriptor) (*Referrer, error) {
	if d.MediaType != types.OCIManifestSchema1 {
		return nil, errNotOurs
	}
	raw, err := fetch.get(ctx, "manifests", d.Digest.String(), "referrer manifest", maxManifestBytes, string(types.OCIManifestSchema1))
	if err != nil {
		return nil, err
	}
	var m ociManifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("referrer manifest %s: %w", d.Digest, err)
	}
	if m.ArtifactType != ArtifactType {
		return nil, errNotOurs
	}
	if m.MediaType != string(types.OCIManifestSchema1) || m.SchemaVersion != 2 {
		return nil, fmt.Errorf("referrer manifest %s: mediaType %q schemaVersion %d, want an OCI image manifest v2", d.Digest, m.MediaType, m.SchemaVersion)
	}
	if m.Subject == nil || m.Subject.Digest != img.Digest {
		return nil, fmt.Errorf("referrer manifest %s names another subject than %s", d.Digest, img.Digest)
	}
	if pt := m.Annotations[AnnotationPredicateType]; pt != attest.PredicateType {
		return nil, fmt.Errorf("referrer manifest %s: predicate type %q, want %s", d.Digest, pt, attest.PredicateType)
	}
	if len(m.Layers) < 1 || len(m.Layers) > 2 || m.Layers[0].MediaType != EnvelopeMediaType ||
		len(m.Layers) == 2 && m.Layers[1].MediaType != BundleMediaType {
		return nil, fmt.Errorf("referrer manifest %s: want an envelope layer (%s) and optionally a bundle layer (%s)", d.Digest, EnvelopeMediaType, BundleMediaType)
	}
	r := &Referrer{
		Digest:    d.Digest.String(),
		Subject:   img.Digest,
		Gate:      m.Annotations[AnnotationGate],
		RequestID: m.Annotations[AnnotationRequestID],
	}
	// Hints only: unparsable values are left zero.
	r.PolicyVersion, _ = strconv.ParseInt(m.Annotations[AnnotationPolicyVersion], 10, 64)
	r.Created, _ = time.Parse(time.RFC3339Nano, m.Annotations[AnnotationCreated])

	if r.Envelope, err = fetch.blob(ctx, m.Layers[0], "envelope blob", c.maxEnv); err != nil {
		return nil, fmt.Errorf("referrer %s: %w", d.Digest, err)
	}
	if len(m.Layers) == 2 {
		if r.Bundle, err = fetch.blob(ctx, m.Layers[1], "log bundle blob", c.maxBundle); err != nil {
			return nil, fmt.Errorf("referrer %s: %w", d.Digest, err)
		}
	}
	return r, nil
}

// repository parses a canonical repository name, under the client's rules.
func (c *Client) repository(s string) (name.Repository, error) {
	r, err := c.parse(s)
	if err != nil {
		return name.Repository{}, err
	}
	return r.Context(), nil
}

// fetcher gets manifests and blobs by digest from one repository, with
// pull credentials, and checks what it reads against the digest.
type fetcher struct {
	repo   name.Repository
	client *http.Client
}

func (c *Client) fetcher(ctx context.Context, repo name.Repository) (*fetcher, error) {
	auth, err := authn.Resolve(ctx, c.keychain, repo)
	if err != nil {
		return nil, fmt.Errorf("credentials for %s: %w", repo.RegistryStr(), err)
	}
	tr, err := transport.NewWithContext(ctx, repo.Registry, auth, c.transport, []string{repo.Scope(transport.PullScope)})
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", repo.RegistryStr(), err)
	}
	return &fetcher{repo: repo, client: &http.Client{Transport: tr}}, nil
}

func (f *fetcher) blob(ctx context.Context, d descriptor, what string, limit int64) ([]byte, error) {
	if d.Size < 0 || d.Size > limit {
		return nil, fmt.Errorf("%s %s: size %d is outside 0..%d", what, d.Digest, d.Size, limit)
	}
	return f.get(ctx, "blobs", d.Digest, what, d.Size, "")
}

// get reads /v2/<repo>/<kind>/<digest>, at most limit bytes, and checks the
// bytes' sha256 against digest.
func (f *fetcher) get(ctx context.Context, kind, digest, what string, limit int64, accept string) ([]byte, error) {
	want, err := attest.ParseDigest(digest)
	if err != nil || want.Alg != "sha256" {
		return nil, fmt.Errorf("%s: digest %q is not sha256:<hex>", what, digest)
	}
	u := url.URL{Scheme: f.repo.Scheme(), Host: f.repo.RegistryStr(), Path: fmt.Sprintf("/v2/%s/%s/%s", f.repo.RepositoryStr(), kind, digest)}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching %s %s: %w", what, digest, err)
	}
	defer resp.Body.Close()
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		return nil, fmt.Errorf("fetching %s %s: %w", what, digest, err)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("fetching %s %s: %w", what, digest, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s %s: %w: more than the %d bytes expected", what, digest, ErrDigestMismatch, limit)
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != want.Hex {
		return nil, &DigestMismatchError{What: what, Want: digest, Got: "sha256:" + got}
	}
	return b, nil
}
