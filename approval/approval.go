// Package approval turns what a person names (artifact files, digests,
// container images) into the subjects a release approval signs and the
// artifacts a verifier checks, and verifies the approvals attached to an
// image as OCI referrers. The CLI (request create, attest, sign --request,
// verify, attach), the console and the admission webhook share it, so an
// image means the same subject everywhere: its repository and the sha256
// of its manifest, resolved once, never a tag.
//
// It also holds the checks a party runs before it signs: [CheckRequest]
// (the payload of a request fetched from a coordinator is what the party
// means to approve, under a policy version its trust directory vouches
// for) and [CheckKey] (its key holds a role of the gate under that
// version, and the latest version has not retired or revoked it). Their
// refusals wrap [ErrRefused] and a policy.Kind with a stable code.
package approval

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/oci"
	"github.com/quorate-dev/quorate/policy"
)

// Input is what a command was given to approve or check.
type Input struct {
	// Artifacts are files, hashed (sha256 and sha512).
	Artifacts []string
	// Digests are "sha256:HEX" or "NAME=sha256:HEX" (sha512 too).
	Digests []string
	// Images are registry references ("registry/repo:tag" or
	// "registry/repo@sha256:…"), resolved to their manifest digest.
	Images []string
}

// Empty reports whether nothing was given.
func (in Input) Empty() bool { return len(in.Artifacts)+len(in.Digests)+len(in.Images) == 0 }

// Set is an Input resolved: one subject and one artifact per item, in the
// order files, digests, images.
type Set struct {
	Subjects  []attest.Subject
	Artifacts []policy.Artifact
	// Images are the resolved images, in the order given.
	Images []*oci.Image
}

// Resolve hashes the files, parses the digests and resolves the images
// through reg (needed only when images are given). Each image is resolved
// once: its digest is what is signed or checked from then on.
func Resolve(ctx context.Context, in Input, reg *oci.Client) (*Set, error) {
	s := &Set{}
	for _, p := range in.Artifacts {
		sub, err := attest.HashFile(p)
		if err != nil {
			return nil, err
		}
		s.add(sub, sub.Name)
	}
	for _, d := range in.Digests {
		name, spec := "", d
		if n, rest, ok := strings.Cut(d, "="); ok {
			name, spec = n, rest
		}
		dg, err := attest.ParseDigest(spec)
		if err != nil {
			return nil, err
		}
		label := name
		if label == "" {
			label = d
		}
		s.add(attest.Subject{Name: name, Digest: map[string]string{dg.Alg: dg.Hex}}, label)
	}
	if len(in.Images) > 0 && reg == nil {
		return nil, errors.New("images given but no registry client")
	}
	for _, ref := range in.Images {
		img, err := reg.Resolve(ctx, ref)
		if err != nil {
			return nil, err
		}
		s.Images = append(s.Images, img)
		s.add(img.Subject(), img.Reference())
	}
	return s, nil
}

func (s *Set) add(sub attest.Subject, label string) {
	s.Subjects = append(s.Subjects, sub)
	s.Artifacts = append(s.Artifacts, ArtifactOf(sub, label))
}

// ArtifactOf is what a verifier checks a subject against: its sha256 and
// sha512 digests, under the name label.
func ArtifactOf(sub attest.Subject, label string) policy.Artifact {
	a := policy.Artifact{Name: label}
	for _, alg := range []string{"sha256", "sha512"} {
		if h, ok := sub.Digest[alg]; ok {
			a.Digests = append(a.Digests, attest.Digest{Alg: alg, Hex: h})
		}
	}
	return a
}

// ImageArtifact is what an approval of img must cover: the manifest's
// sha256 (the repository name is not compared: the same bytes pulled
// through a mirror are the same release).
func ImageArtifact(img *oci.Image) (policy.Artifact, error) {
	alg, hx, ok := strings.Cut(img.Digest, ":")
	if !ok || alg != "sha256" {
		return policy.Artifact{}, fmt.Errorf("image digest %q is not sha256:HEX", img.Digest)
	}
	return policy.Artifact{Name: img.Reference(), Digests: []attest.Digest{{Alg: alg, Hex: hx}}}, nil
}

// Candidate is one approval attached to an image and its verdict.
type Candidate struct {
	Referrer *oci.Referrer
	Verdict  *policy.Verdict
}

// ImageResult is what [VerifyImage] found.
type ImageResult struct {
	// Found is the registry's answer: the candidates fetched and checked,
	// and those set aside (tampered, detached, malformed).
	Found *oci.Found
	// Candidates holds one verdict per referrer, in the registry's order,
	// up to and including the first that passed.
	Candidates []Candidate
	// Passed is the candidate that satisfies the gate, nil if none.
	Passed *Candidate
}

// VerifyOptions are passed to every candidate's verification (for example
// policy.RequireLedger()); the candidate's own log bundle is added.
type VerifyOptions []policy.VerifyOption

// VerifyImage finds the approvals attached to img (reg.Find) and verifies
// each with trust for gate until one passes. An error means the registry
// could not be asked; no approval passing is a result, not an error.
func VerifyImage(ctx context.Context, reg *oci.Client, trust *policy.Trust, img *oci.Image, req policy.Request, opts VerifyOptions) (*ImageResult, error) {
	art, err := ImageArtifact(img)
	if err != nil {
		return nil, err
	}
	found, err := reg.Find(ctx, img)
	if err != nil {
		return nil, fmt.Errorf("finding approvals of %s: %w", img.Reference(), err)
	}
	req.Artifacts = []policy.Artifact{art}
	res := &ImageResult{Found: found}
	for i := range found.Referrers {
		r := &found.Referrers[i]
		o := append([]policy.VerifyOption(nil), opts...)
		if r.Bundle != nil {
			o = append(o, policy.WithLedgerBundle(r.Bundle))
		}
		if src := trust.Source(); src != nil {
			o = append(o, policy.WithHistory(src))
		}
		v := trust.VerifyBytes(r.Envelope, req, o...)
		res.Candidates = append(res.Candidates, Candidate{Referrer: r, Verdict: v})
		if v.Verified {
			res.Passed = &res.Candidates[len(res.Candidates)-1]
			break
		}
	}
	return res, nil
}

// ImageReferences returns "repository@sha256:HEX" for each subject that
// names an image: a name whose first path element is a registry host (it
// holds a "." or a ":", or is "localhost"), as oci's canonical repository
// names always do, and a sha256 digest. File subjects ("app.tgz",
// "dist/app.tgz") are not images.
func ImageReferences(subjects []attest.Subject) []string {
	var refs []string
	for _, s := range subjects {
		host, _, ok := strings.Cut(s.Name, "/")
		h, has := s.Digest["sha256"]
		if !ok || !has || !(strings.ContainsAny(host, ".:") || host == "localhost") {
			continue
		}
		refs = append(refs, s.Name+"@sha256:"+h)
	}
	return refs
}
