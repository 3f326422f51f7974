// Package oci resolves container images to the manifest digests quorate
// signs, and carries approvals to and from registries as OCI 1.1 referrers.
//
// # Images as subjects
//
// [Client.Resolve] turns a reference ("registry/repo:tag" or
// "registry/repo@sha256:…") into an [Image]: the repository's canonical name
// and the sha256 digest of the manifest bytes the registry served, checked
// here. A tag is resolved once; what is signed and shown is the digest
// ([Image.Reference], [Image.Subject]), never the tag. An index (a
// multi-architecture image) is approved as the index digest; a platform
// manifest is accepted under that approval when the approved index contains
// it ([Image.Contains], [Client.IndexContains]).
//
// # Referrers
//
// [Client.Attach] pushes a composite attestation (DSSE envelope) and its
// log bundle as an OCI 1.1 referrer of an image; [Client.Find] lists an
// image's referrers and fetches the candidates' bytes, checking every digest.
// Registries without the referrers API get the referrers tag schema
// ("sha256-<hex>"). The layout is in docs/kubernetes.md and [ArtifactType].
//
// # Transport security
//
// Credentials come from the Docker config keychain (~/.docker/config.json or
// $DOCKER_CONFIG, including credential helpers) unless [Options.Keychain]
// says otherwise. Every request goes over HTTPS: go-containerregistry would
// fall back to plain HTTP for localhost, *.local and RFC 1918 addresses, and
// this package refuses that unless [Options.Insecure] is set, which is only
// accepted for loopback registries (127.0.0.0/8, ::1, localhost).
//
// Nothing here verifies signatures: package policy does, on the envelopes
// [Client.Find] returns. Annotations are unsigned hints.
package oci

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/quorate-dev/quorate/attest"
)

// Errors callers may test for.
var (
	// ErrInsecure: plain HTTP was asked for a registry that is not on
	// loopback, or attempted without [Options.Insecure].
	ErrInsecure = errors.New("plain HTTP to a registry refused")
	// ErrReference: the image reference cannot be parsed.
	ErrReference = errors.New("bad image reference")
	// ErrMediaType: the registry served something that is not an image
	// manifest or index quorate accepts (Docker schema 1 is refused).
	ErrMediaType = errors.New("unsupported manifest media type")
	// ErrDigestMismatch: bytes served do not hash to the digest they were
	// asked for by; see [DigestMismatchError].
	ErrDigestMismatch = errors.New("digest mismatch")
)

// DigestMismatchError carries the evidence of a digest mismatch.
type DigestMismatchError struct {
	What string // "referrer manifest", "envelope blob", …
	Want string // "sha256:…" asked for
	Got  string // "sha256:…" of the bytes served
}

func (e *DigestMismatchError) Error() string {
	return fmt.Sprintf("%s: registry served bytes with digest %s, want %s", e.What, e.Got, e.Want)
}

// Is makes errors.Is(err, ErrDigestMismatch) true.
func (e *DigestMismatchError) Is(target error) bool { return target == ErrDigestMismatch }

// Options configure a [Client]. The zero value is usable.
type Options struct {
	// Keychain supplies registry credentials; nil means
	// authn.DefaultKeychain (Docker config and credential helpers).
	Keychain authn.Keychain
	// Insecure allows plain HTTP, for loopback registries only (tests).
	Insecure bool
	// Transport is the base HTTP transport; nil means remote.DefaultTransport.
	Transport http.RoundTripper
	// MaxReferrers bounds the candidates [Client.Find] fetches (default 64).
	MaxReferrers int
	// MaxEnvelopeBytes bounds an envelope's size (default
	// attest.DefaultLimits.MaxBytes); MaxBundleBytes a log bundle's (default
	// the same).
	MaxEnvelopeBytes, MaxBundleBytes int64
}

// Client talks to registries. It is safe for concurrent use.
type Client struct {
	keychain  authn.Keychain
	insecure  bool
	transport http.RoundTripper
	maxRefs   int
	maxEnv    int64
	maxBundle int64
}

// New returns a client for o.
func New(o Options) *Client {
	c := &Client{
		keychain:  o.Keychain,
		insecure:  o.Insecure,
		maxRefs:   o.MaxReferrers,
		maxEnv:    o.MaxEnvelopeBytes,
		maxBundle: o.MaxBundleBytes,
	}
	if c.keychain == nil {
		c.keychain = authn.DefaultKeychain
	}
	base := o.Transport
	if base == nil {
		base = remote.DefaultTransport
	}
	c.transport = &httpsOnly{insecure: o.Insecure, inner: base}
	if c.maxRefs <= 0 {
		c.maxRefs = 64
	}
	if c.maxEnv <= 0 {
		c.maxEnv = attest.DefaultLimits.MaxBytes
	}
	if c.maxBundle <= 0 {
		c.maxBundle = attest.DefaultLimits.MaxBytes
	}
	return c
}

// Image is a resolved image: a repository and a manifest digest.
type Image struct {
	// Repository is the canonical repository name, registry included
	// ("index.docker.io/library/nginx", "127.0.0.1:5000/app").
	Repository string
	// Tag is the tag that was resolved, empty when the reference named a
	// digest. Informational only: it is never signed.
	Tag string
	// Digest is "sha256:<hex>" of the manifest bytes.
	Digest string
	// MediaType and Size describe the manifest.
	MediaType string
	Size      int64
	// Manifests lists an index's direct children; nil for an image manifest.
	Manifests []Manifest
}

// Manifest is an index's child.
type Manifest struct {
	Digest    string
	MediaType string
	Platform  string // "os/arch[/variant]", empty when the index names none
}

// IsIndex reports whether the image is an index (multi-architecture).
func (i *Image) IsIndex() bool { return isIndex(types.MediaType(i.MediaType)) }

// Reference returns "repository@sha256:…", the reference to sign and show.
func (i *Image) Reference() string { return i.Repository + "@" + i.Digest }

// Subject returns the in-toto subject for the image: the repository's name
// and the sha256 of the manifest.
func (i *Image) Subject() attest.Subject {
	return attest.Subject{Name: i.Repository, Digest: map[string]string{"sha256": strings.TrimPrefix(i.Digest, "sha256:")}}
}

// Contains reports whether the index i lists the manifest with digest
// ("sha256:…") directly. It is false for an image manifest. Nested indexes
// are followed by [Client.IndexContains].
func (i *Image) Contains(digest string) bool {
	for _, m := range i.Manifests {
		if m.Digest == digest {
			return true
		}
	}
	return false
}

// Resolve fetches the manifest ref names and returns the image with the
// digest of the bytes served. A reference by digest is checked against it.
func (c *Client) Resolve(ctx context.Context, ref string) (*Image, error) {
	r, err := c.parse(ref)
	if err != nil {
		return nil, err
	}
	desc, err := remote.Get(r, c.remoteOptions(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", ref, err)
	}
	img, err := imageFrom(r.Context(), desc.MediaType, desc.Manifest)
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", ref, err)
	}
	switch r := r.(type) {
	case name.Digest:
		if img.Digest != r.DigestStr() {
			return nil, fmt.Errorf("resolving %s: %w", ref, &DigestMismatchError{What: "manifest", Want: r.DigestStr(), Got: img.Digest})
		}
	case name.Tag:
		img.Tag = r.TagStr()
	}
	return img, nil
}

// imageFrom describes the manifest bytes served for repo.
func imageFrom(repo name.Repository, mt types.MediaType, manifest []byte) (*Image, error) {
	if !isIndex(mt) && !isImage(mt) {
		return nil, fmt.Errorf("%w: %q", ErrMediaType, mt)
	}
	sum := sha256.Sum256(manifest)
	img := &Image{
		Repository: repo.Name(),
		Digest:     "sha256:" + hex.EncodeToString(sum[:]),
		MediaType:  string(mt),
		Size:       int64(len(manifest)),
	}
	if isIndex(mt) {
		im, err := v1.ParseIndexManifest(bytes.NewReader(manifest))
		if err != nil {
			return nil, fmt.Errorf("parsing index %s: %w", img.Digest, err)
		}
		img.Manifests = make([]Manifest, 0, len(im.Manifests))
		for _, d := range im.Manifests {
			m := Manifest{Digest: d.Digest.String(), MediaType: string(d.MediaType)}
			if d.Platform != nil {
				m.Platform = d.Platform.String()
			}
			img.Manifests = append(img.Manifests, m)
		}
	}
	return img, nil
}

func isIndex(mt types.MediaType) bool {
	return mt == types.OCIImageIndex || mt == types.DockerManifestList
}

func isImage(mt types.MediaType) bool {
	return mt == types.OCIManifestSchema1 || mt == types.DockerManifestSchema2
}

// parse reads ref, refusing Insecure for a registry off loopback.
func (c *Client) parse(ref string) (name.Reference, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrReference, ref, err)
	}
	if !c.insecure {
		return r, nil
	}
	if host := r.Context().RegistryStr(); !isLoopback(host) {
		return nil, fmt.Errorf("%w: registry %s is not on loopback; insecure (plain HTTP) registries are only allowed on 127.0.0.0/8, ::1 or localhost, for tests", ErrInsecure, host)
	}
	return name.ParseReference(ref, name.Insecure)
}

func (c *Client) remoteOptions(ctx context.Context) []remote.Option {
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(c.keychain),
		remote.WithTransport(c.transport),
		remote.WithUserAgent("quorate"),
	}
}

// isLoopback reports whether hostport names a loopback host without a DNS
// lookup: localhost, 127.0.0.0/8 or ::1.
func isLoopback(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// httpsOnly refuses every request that is not HTTPS, except plain HTTP to a
// loopback host when insecure is set. It sits under go-containerregistry's
// own transports, so it sees the scheme they chose, redirects included.
type httpsOnly struct {
	insecure bool
	inner    http.RoundTripper
}

func (t *httpsOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	switch {
	case req.URL.Scheme == "https":
	case req.URL.Scheme == "http" && t.insecure && isLoopback(req.URL.Host):
	case req.URL.Scheme == "http" && t.insecure:
		closeBody(req)
		return nil, fmt.Errorf("%w: %s is not on loopback", ErrInsecure, req.URL.Host)
	default:
		closeBody(req)
		return nil, fmt.Errorf("%w: %s://%s needs HTTPS (plain HTTP only with the insecure option, on loopback)", ErrInsecure, req.URL.Scheme, req.URL.Host)
	}
	return t.inner.RoundTrip(req)
}

// closeBody closes a refused request's body, as a RoundTripper must.
func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}
