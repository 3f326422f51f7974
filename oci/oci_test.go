package oci_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/internal/registrytest"
	"github.com/quorate-dev/quorate/oci"
)

// registries are the two referrer paths: Debian's distribution 2.8 (the real
// registry, no referrers API: the tag schema) and go-containerregistry's
// in-process registry standing in for a registry with the OCI 1.1 referrers
// API, which the Debian one lacks.
var registries = []struct {
	name     string
	start    func(testing.TB) *registrytest.Registry
	fallback bool
}{
	{"distribution 2.8 tag schema", registrytest.Start, true},
	{"in-process go-containerregistry referrers API", registrytest.StartInProcess, false},
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var client = oci.New(oci.Options{Insecure: true})

func ref(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// pushImage pushes a random single-layer image to ref and returns it.
func pushImage(t *testing.T, to string) v1.Image {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref(t, to), img); err != nil {
		t.Fatalf("pushing %s: %v", to, err)
	}
	return img
}

func digestOf(t *testing.T, d interface{ Digest() (v1.Hash, error) }) string {
	t.Helper()
	h, err := d.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

// platformIndex builds an OCI index of one random image per platform.
func platformIndex(t *testing.T, platforms ...string) (v1.ImageIndex, []v1.Image) {
	t.Helper()
	var idx v1.ImageIndex = mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	var imgs []v1.Image
	for _, p := range platforms {
		img, err := random.Image(128, 1)
		if err != nil {
			t.Fatal(err)
		}
		os, arch, _ := strings.Cut(p, "/")
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: os, Architecture: arch}}})
		imgs = append(imgs, img)
	}
	return idx, imgs
}

// envelope returns an (unsigned) release-approval envelope for subjects:
// this package checks the layout and the subject, package policy the signatures.
func envelope(t *testing.T, gate string, subjects ...attest.Subject) []byte {
	t.Helper()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	st, err := attest.NewStatement(subjects, attest.Predicate{
		Gate:      gate,
		Policy:    attest.PolicyRef{Version: 3, Digest: map[string]string{"sha256": strings.Repeat("ab", 32)}},
		RequestID: "req-" + gate,
		Created:   now,
		Expires:   now.Add(24 * time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := attest.Encode(attest.NewEnvelope(st))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestResolve(t *testing.T) {
	reg := registrytest.Start(t)
	ctx := ctxT(t)
	img := pushImage(t, reg.Repo("app:v1"))
	want := digestOf(t, img)
	other := pushImage(t, reg.Repo("other:v1"))

	for _, tc := range []struct {
		name, ref string
		tag       string
		wantErr   bool
	}{
		{"by tag", reg.Repo("app:v1"), "v1", false},
		{"by digest", reg.Repo("app@") + want, "", false},
		{"by tag and digest", reg.Repo("app:v1@") + want, "", false},
		{"unknown tag", reg.Repo("app:v2"), "", true},
		{"digest of an image in another repository", reg.Repo("app@") + digestOf(t, other), "", true},
		{"malformed reference", reg.Repo("App:UPPER CASE"), "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := client.Resolve(ctx, tc.ref)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("Resolve(%s) = %+v, want an error", tc.ref, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve(%s): %v", tc.ref, err)
			}
			if got.Digest != want || got.Tag != tc.tag || got.Repository != reg.Repo("app") || got.IsIndex() {
				t.Fatalf("Resolve(%s) = %+v, want digest %s tag %q", tc.ref, got, want, tc.tag)
			}
			if got.Reference() != reg.Repo("app@")+want {
				t.Fatalf("Reference() = %s", got.Reference())
			}
			s := got.Subject()
			if s.Name != reg.Repo("app") || len(s.Digest) != 1 || "sha256:"+s.Digest["sha256"] != want {
				t.Fatalf("Subject() = %+v", s)
			}
			if err := attest.CheckSubject(s); err != nil {
				t.Fatalf("Subject() is not a valid attest.Subject: %v", err)
			}
		})
	}
}

func TestIndex(t *testing.T) {
	reg := registrytest.Start(t)
	ctx := ctxT(t)
	idx, imgs := platformIndex(t, "linux/amd64", "linux/arm64")
	if err := remote.WriteIndex(ref(t, reg.Repo("multi:v1")), idx); err != nil {
		t.Fatal(err)
	}
	// An index of indexes: the approved outer index contains the platform
	// manifests through the inner one.
	outer := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex), mutate.IndexAddendum{Add: idx})
	if err := remote.WriteIndex(ref(t, reg.Repo("multi:nested")), outer); err != nil {
		t.Fatal(err)
	}
	stray := pushImage(t, reg.Repo("multi:stray"))

	got, err := client.Resolve(ctx, reg.Repo("multi:v1"))
	if err != nil {
		t.Fatal(err)
	}
	if !got.IsIndex() || got.Digest != digestOf(t, idx) || len(got.Manifests) != 2 {
		t.Fatalf("Resolve(index) = %+v, want the index %s with 2 manifests", got, digestOf(t, idx))
	}
	if got.Manifests[0].Platform != "linux/amd64" || got.Manifests[1].Platform != "linux/arm64" {
		t.Fatalf("platforms = %+v", got.Manifests)
	}
	repo := reg.Repo("multi")
	for _, tc := range []struct {
		name            string
		index, manifest string
		want            bool
	}{
		{"amd64 in the index", digestOf(t, idx), digestOf(t, imgs[0]), true},
		{"arm64 in the index", digestOf(t, idx), digestOf(t, imgs[1]), true},
		{"a stray image is not", digestOf(t, idx), digestOf(t, stray), false},
		{"platform through a nested index", digestOf(t, outer), digestOf(t, imgs[1]), true},
		{"an image manifest contains nothing", digestOf(t, stray), digestOf(t, imgs[0]), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, err := client.IndexContains(ctx, repo, tc.index, tc.manifest)
			if err != nil {
				t.Fatal(err)
			}
			if in != tc.want {
				t.Fatalf("IndexContains(%s, %s) = %v, want %v", tc.index, tc.manifest, in, tc.want)
			}
			if tc.index == got.Digest && got.Contains(tc.manifest) != tc.want {
				t.Fatalf("Image.Contains(%s) = %v, want %v", tc.manifest, !tc.want, tc.want)
			}
		})
	}
	t.Run("unknown index", func(t *testing.T) {
		if _, err := client.IndexContains(ctx, repo, "sha256:"+strings.Repeat("0", 64), digestOf(t, imgs[0])); err == nil {
			t.Fatal("IndexContains on a missing index succeeded")
		}
	})
}

func TestAttachFind(t *testing.T) {
	for _, r := range registries {
		t.Run(r.name, func(t *testing.T) {
			reg := r.start(t)
			ctx := ctxT(t)
			pushImage(t, reg.Repo("app:v1"))
			img, err := client.Resolve(ctx, reg.Repo("app:v1"))
			if err != nil {
				t.Fatal(err)
			}
			found, err := client.Find(ctx, img)
			if err != nil || len(found.Referrers)+len(found.Rejected) != 0 {
				t.Fatalf("Find before any attach = %+v, %v; want nothing", found, err)
			}

			prod := envelope(t, "production", img.Subject())
			bundle := []byte(`{"log":"bundle"}`)
			att, err := client.Attach(ctx, img, prod, bundle)
			if err != nil {
				t.Fatalf("Attach: %v", err)
			}
			staging := envelope(t, "staging", attest.Subject{Name: "other", Digest: map[string]string{"sha256": strings.Repeat("cd", 32)}}, img.Subject())
			if _, err := client.Attach(ctx, img, staging, nil); err != nil {
				t.Fatalf("Attach without a bundle: %v", err)
			}
			// The same bytes again: the same referrer, not a third one.
			again, err := client.Attach(ctx, img, prod, bundle)
			if err != nil || again.Digest != att.Digest {
				t.Fatalf("Attach again = %+v, %v; want the same referrer %s", again, err, att.Digest)
			}

			// Another tool's referrer without an artifactType (listed with the
			// empty config's type): fetched, recognised as not quorate's, ignored.
			h, err := v1.NewHash(img.Digest)
			if err != nil {
				t.Fatal(err)
			}
			foreign := mutate.Subject(mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), oci.EmptyConfigMediaType),
				v1.Descriptor{MediaType: types.MediaType(img.MediaType), Digest: h, Size: img.Size}).(v1.Image)
			if err := remote.Write(ref(t, reg.Repo("app@")+digestOf(t, foreign)), foreign); err != nil {
				t.Fatalf("pushing a foreign referrer: %v", err)
			}
			listing, err := remote.Referrers(ref(t, reg.Repo("app@")+img.Digest).(name.Digest))
			if err != nil {
				t.Fatal(err)
			}
			if im, err := listing.IndexManifest(); err != nil || len(im.Manifests) != 3 {
				t.Fatalf("referrers listing = %+v, %v; want the 2 approvals and the foreign referrer", im, err)
			}

			found, err = client.Find(ctx, img)
			if err != nil {
				t.Fatal(err)
			}
			if len(found.Rejected) != 0 || len(found.Referrers) != 2 {
				t.Fatalf("Find = %d referrers, rejected %+v; want 2 and none", len(found.Referrers), found.Rejected)
			}
			byGate := map[string]oci.Referrer{}
			for _, f := range found.Referrers {
				byGate[f.Gate] = f
			}
			p, s := byGate["production"], byGate["staging"]
			if p.Digest != att.Digest || p.Subject != img.Digest || !bytes.Equal(p.Envelope, prod) || !bytes.Equal(p.Bundle, bundle) ||
				p.PolicyVersion != 3 || p.RequestID != "req-production" || !p.Created.Equal(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)) {
				t.Fatalf("production referrer = %+v", p)
			}
			if !bytes.Equal(s.Envelope, staging) || s.Bundle != nil {
				t.Fatalf("staging referrer = %+v", s)
			}

			// Bounds: candidates past MaxReferrers are counted, not fetched;
			// an envelope over the size limit is rejected before reading it.
			few := oci.New(oci.Options{Insecure: true, MaxReferrers: 1})
			if f, err := few.Find(ctx, img); err != nil || len(f.Referrers)+len(f.Rejected) > 1 || f.Skipped != 2 {
				t.Fatalf("Find with MaxReferrers 1 = %+v, %v; want 1 fetched (quorate's or the foreign one), 2 skipped", f, err)
			}
			small := oci.New(oci.Options{Insecure: true, MaxEnvelopeBytes: int64(len(prod)) - 1})
			if f, err := small.Find(ctx, img); err != nil || len(f.Rejected) != 2 || !strings.Contains(f.Rejected[0].Err.Error(), "outside") {
				t.Fatalf("Find with a small envelope limit = %+v, %v; want both rejected for size", f, err)
			}
			if _, err := small.Attach(ctx, img, prod, nil); err == nil {
				t.Fatal("Attach accepted an envelope over the limit")
			}

			// Which path was taken: the tag schema leaves a tag sha256-<hex>.
			_, err = remote.Head(ref(t, reg.Repo("app:")+strings.Replace(img.Digest, ":", "-", 1)))
			if hasTag := err == nil; hasTag != r.fallback {
				t.Fatalf("fallback tag present = %v (%v), want %v", hasTag, err, r.fallback)
			}
		})
	}
}

func TestAttachRefusesAnotherImagesApproval(t *testing.T) {
	reg := registrytest.Start(t)
	ctx := ctxT(t)
	pushImage(t, reg.Repo("app:v1"))
	pushImage(t, reg.Repo("app:v2"))
	v1img, err := client.Resolve(ctx, reg.Repo("app:v1"))
	if err != nil {
		t.Fatal(err)
	}
	v2img, err := client.Resolve(ctx, reg.Repo("app:v2"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		envelope []byte
	}{
		{"approval of another image", envelope(t, "production", v2img.Subject())},
		{"not an envelope", []byte(`{"hello":"world"}`)},
		{"empty", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := client.Attach(ctx, v1img, tc.envelope, nil); err == nil {
				t.Fatal("Attach accepted it")
			}
		})
	}
	found, err := client.Find(ctx, v1img)
	if err != nil || len(found.Referrers) != 0 {
		t.Fatalf("Find after refused attaches = %+v, %v", found, err)
	}
}

// A tag re-pushed to another image resolves to the new digest, and the old
// image's approval is not found for it.
func TestRepushedTag(t *testing.T) {
	reg := registrytest.Start(t)
	ctx := ctxT(t)
	pushImage(t, reg.Repo("app:release"))
	old, err := client.Resolve(ctx, reg.Repo("app:release"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Attach(ctx, old, envelope(t, "production", old.Subject()), nil); err != nil {
		t.Fatal(err)
	}
	newer := digestOf(t, pushImage(t, reg.Repo("app:release")))

	now, err := client.Resolve(ctx, reg.Repo("app:release"))
	if err != nil {
		t.Fatal(err)
	}
	if now.Digest != newer || now.Digest == old.Digest {
		t.Fatalf("re-pushed tag resolves to %s, want the new image %s (old %s)", now.Digest, newer, old.Digest)
	}
	found, err := client.Find(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(found.Referrers) != 0 || len(found.Rejected) != 0 {
		t.Fatalf("the new image has referrers %+v, rejected %+v; want none", found.Referrers, found.Rejected)
	}
	if found, err := client.Find(ctx, old); err != nil || len(found.Referrers) != 1 {
		t.Fatalf("the old image lost its referrer: %+v, %v", found, err)
	}
}

// Bytes changed in the registry's storage are caught by their digests, and a
// referrer listed for another image (the tag schema's index is only a tag)
// is refused by its subject.
func TestTamperedReferrer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, reg *registrytest.Registry, img *oci.Image, r *oci.Referrer)
		want   string
	}{
		{"envelope bytes changed", func(t *testing.T, reg *registrytest.Registry, _ *oci.Image, r *oci.Referrer) {
			rewrite(t, reg, blobDigest(r.Envelope), "in-toto", "in-tOto")
		}, "digest"},
		{"log bundle bytes changed", func(t *testing.T, reg *registrytest.Registry, _ *oci.Image, r *oci.Referrer) {
			rewrite(t, reg, blobDigest(r.Bundle), "bundle", "BUNDLE")
		}, "digest"},
		{"manifest annotation changed", func(t *testing.T, reg *registrytest.Registry, _ *oci.Image, r *oci.Referrer) {
			rewrite(t, reg, r.Digest, `"dev.quorate.gate":"production"`, `"dev.quorate.gate":"productioX"`)
		}, "digest"},
		{"referrer listed under another image", func(t *testing.T, reg *registrytest.Registry, img *oci.Image, _ *oci.Referrer) {
			// Copy the approved image's referrers index to the tag schema
			// tag of another image in the same repository.
			victim := digestOf(t, pushImage(t, reg.Repo("app:other")))
			src, err := remote.Get(ref(t, reg.Repo("app:")+strings.Replace(img.Digest, ":", "-", 1)))
			if err != nil {
				t.Fatal(err)
			}
			if err := remote.Put(ref(t, reg.Repo("app:")+strings.Replace(victim, ":", "-", 1)), src); err != nil {
				t.Fatal(err)
			}
			img.Digest = victim
		}, "another subject"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := registrytest.Start(t)
			ctx := ctxT(t)
			pushImage(t, reg.Repo("app:v1"))
			img, err := client.Resolve(ctx, reg.Repo("app:v1"))
			if err != nil {
				t.Fatal(err)
			}
			att, err := client.Attach(ctx, img, envelope(t, "production", img.Subject()), []byte(`{"log":"bundle"}`))
			if err != nil {
				t.Fatal(err)
			}
			tc.tamper(t, reg, img, att)
			found, err := client.Find(ctx, img)
			if err != nil {
				t.Fatal(err)
			}
			if len(found.Referrers) != 0 || len(found.Rejected) != 1 {
				t.Fatalf("Find = referrers %+v rejected %+v; want the one candidate rejected", found.Referrers, found.Rejected)
			}
			rej := found.Rejected[0]
			if rej.Digest != att.Digest || !strings.Contains(rej.Err.Error(), tc.want) {
				t.Fatalf("rejected %s: %v; want %s for %q", rej.Digest, rej.Err, att.Digest, tc.want)
			}
			if tc.want == "digest" && !errors.Is(rej.Err, oci.ErrDigestMismatch) {
				t.Fatalf("rejection %v is not ErrDigestMismatch", rej.Err)
			}
		})
	}
}

func blobDigest(b []byte) string {
	h, _, _ := v1.SHA256(bytes.NewReader(b))
	return h.String()
}

// rewrite replaces old by new (same length) in the stored content of digest.
func rewrite(t *testing.T, reg *registrytest.Registry, digest, old, new string) {
	t.Helper()
	if len(old) != len(new) {
		t.Fatal("rewrite keeps the size")
	}
	path, err := reg.BlobPath(digest)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%s does not contain %q", digest, old)
	}
	if err := os.WriteFile(path, bytes.Replace(b, []byte(old), []byte(new), 1), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestInsecureOnlyOnLoopback(t *testing.T) {
	ctx := ctxT(t)
	// Refused before any connection: none of these hosts is contacted.
	for _, tc := range []struct{ name, ref string }{
		{"public registry", "registry.example.com/app:v1"},
		{"RFC 1918 address", "10.0.0.5:5000/app:v1"},
		{"mDNS name", "registry.local:5000/app:v1"},
		{"Docker Hub default", "app:v1"},
		{"loopback look-alike name", "127.0.0.1.example.com/app:v1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client.Resolve(ctx, tc.ref)
			if !errors.Is(err, oci.ErrInsecure) {
				t.Fatalf("Resolve(%s) with Insecure = %v, want ErrInsecure", tc.ref, err)
			}
			if _, err := client.Find(ctx, &oci.Image{Repository: strings.Split(tc.ref, ":v1")[0], Digest: "sha256:" + strings.Repeat("0", 64)}); !errors.Is(err, oci.ErrInsecure) {
				t.Fatalf("Find on %s with Insecure = %v, want ErrInsecure", tc.ref, err)
			}
		})
	}

	t.Run("loopback registry without Insecure is not reached over plain HTTP", func(t *testing.T) {
		reg := registrytest.Start(t)
		pushImage(t, reg.Repo("app:v1"))
		secure := oci.New(oci.Options{})
		if _, err := secure.Resolve(ctx, reg.Repo("app:v1")); err == nil {
			t.Fatal("Resolve reached a plain-HTTP registry without Insecure")
		} else if !strings.Contains(err.Error(), oci.ErrInsecure.Error()) {
			t.Fatalf("Resolve without Insecure failed for another reason: %v", err)
		}
	})
}

// The transport guard, on requests that never leave the process.
func TestTransportRefusesPlainHTTP(t *testing.T) {
	for _, tc := range []struct {
		name     string
		insecure bool
		url      string
		refused  bool
	}{
		{"https anywhere", false, "https://registry.example.com/v2/", false},
		{"http without insecure", false, "http://registry.example.com/v2/", true},
		{"http to loopback without insecure", false, "http://127.0.0.1:5000/v2/", true},
		{"http to loopback with insecure", true, "http://127.0.0.1:5000/v2/", false},
		{"http to ::1 with insecure", true, "http://[::1]:5000/v2/", false},
		{"http to localhost with insecure", true, "http://localhost:5000/v2/", false},
		{"http to RFC 1918 with insecure", true, "http://10.0.0.5:5000/v2/", true},
		{"http redirect to storage with insecure", true, "http://storage.example.com/blob", true},
		{"ftp", true, "ftp://127.0.0.1/x", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reached := false
			c := oci.New(oci.Options{Insecure: tc.insecure, Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
				reached = true
				return &http.Response{StatusCode: http.StatusTeapot, Body: io.NopCloser(strings.NewReader(""))}, nil
			})})
			req, err := http.NewRequest(http.MethodGet, tc.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := oci.Transport(c).RoundTrip(req)
			if resp != nil {
				resp.Body.Close()
			}
			if tc.refused != errors.Is(err, oci.ErrInsecure) || reached == tc.refused {
				t.Fatalf("RoundTrip(%s) = %v, reached %v; want refused %v", tc.url, err, reached, tc.refused)
			}
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Only image manifests and indexes resolve. The in-process registry is used
// because it stores any manifest media type; distribution 2.8 refuses
// schema 1 pushes by default.
func TestResolveRefusesOtherMediaTypes(t *testing.T) {
	reg := registrytest.StartInProcess(t)
	ctx := ctxT(t)
	for _, tc := range []struct {
		name, mediaType string
	}{
		{"Docker schema 1", string(types.DockerManifestSchema1Signed)},
		{"unknown media type", "application/vnd.example.thing.v1+json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			to := reg.Repo("odd:" + strings.ReplaceAll(tc.name, " ", "-"))
			if err := remote.Put(ref(t, to), rawManifest{body: `{"schemaVersion":1,"name":"odd","tag":"x"}`, mt: types.MediaType(tc.mediaType)}); err != nil {
				t.Fatal(err)
			}
			if _, err := client.Resolve(ctx, to); !errors.Is(err, oci.ErrMediaType) {
				t.Fatalf("Resolve = %v, want ErrMediaType", err)
			}
		})
	}
}

type rawManifest struct {
	body string
	mt   types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return []byte(m.body), nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }

// Manifest bytes changed in the registry's storage: by digest the image no
// longer resolves, and by tag it resolves to the digest of what is served
// now, which no approval of the original names.
func TestTamperedImageManifest(t *testing.T) {
	reg := registrytest.Start(t)
	ctx := ctxT(t)
	img := pushImage(t, reg.Repo("app:v1"))
	orig := digestOf(t, img)
	cfg, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	forged := cfg.Hex[:len(cfg.Hex)-1] + map[bool]string{true: "0", false: "1"}[cfg.Hex[len(cfg.Hex)-1] != '0']
	rewrite(t, reg, orig, cfg.Hex, forged)

	if got, err := client.Resolve(ctx, reg.Repo("app@")+orig); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("Resolve by digest of tampered bytes = %+v, %v; want a digest mismatch", got, err)
	}
	got, err := client.Resolve(ctx, reg.Repo("app:v1"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest == orig {
		t.Fatalf("Resolve by tag = %s, the original digest, for tampered bytes", got.Digest)
	}
}

// One client serves concurrent callers (the admission webhook will).
func TestConcurrentUse(t *testing.T) {
	reg := registrytest.Start(t)
	ctx := ctxT(t)
	pushImage(t, reg.Repo("app:v1"))
	img, err := client.Resolve(ctx, reg.Repo("app:v1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Attach(ctx, img, envelope(t, "production", img.Subject()), nil); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 8)
	for range cap(errs) {
		go func() {
			got, err := client.Resolve(ctx, reg.Repo("app:v1"))
			if err == nil && got.Digest != img.Digest {
				err = errors.New("resolved to " + got.Digest)
			}
			if err == nil {
				var f *oci.Found
				if f, err = client.Find(ctx, got); err == nil && len(f.Referrers) != 1 {
					err = errors.New("referrer not found")
				}
			}
			errs <- err
		}()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
