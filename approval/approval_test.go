package approval

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/internal/registrytest"
	"github.com/quorate-dev/quorate/oci"
)

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "app.tgz")
	if err := os.WriteFile(file, []byte("release\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fileSub, err := attest.HashFile(file)
	if err != nil {
		t.Fatal(err)
	}
	hex := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name      string
		in        Input
		subjects  []string // subject names
		artifacts []string // artifact labels
		wantErr   string
	}{
		{name: "file", in: Input{Artifacts: []string{file}}, subjects: []string{fileSub.Name}, artifacts: []string{fileSub.Name}},
		{name: "named digest", in: Input{Digests: []string{"app=sha256:" + hex}}, subjects: []string{"app"}, artifacts: []string{"app"}},
		{name: "unnamed digest labelled by itself", in: Input{Digests: []string{"sha256:" + hex}}, subjects: []string{""}, artifacts: []string{"sha256:" + hex}},
		{name: "files before digests", in: Input{Digests: []string{"d=sha256:" + hex}, Artifacts: []string{file}}, subjects: []string{fileSub.Name, "d"}, artifacts: []string{fileSub.Name, "d"}},
		{name: "malformed digest", in: Input{Digests: []string{"sha256:xyz"}}, wantErr: "sha256"},
		{name: "missing file", in: Input{Artifacts: []string{filepath.Join(dir, "nope")}}, wantErr: "nope"},
		{name: "image without a registry client", in: Input{Images: []string{"127.0.0.1:1/app:1"}}, wantErr: "no registry client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set, err := Resolve(context.Background(), tc.in, nil)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one naming %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var subs, arts []string
			for i := range set.Subjects {
				subs, arts = append(subs, set.Subjects[i].Name), append(arts, set.Artifacts[i].Name)
			}
			if !slices.Equal(subs, tc.subjects) || !slices.Equal(arts, tc.artifacts) {
				t.Fatalf("subjects %q artifacts %q, want %q %q", subs, arts, tc.subjects, tc.artifacts)
			}
		})
	}
}

// TestResolveImage resolves a tag on Debian's registry once: the subject is
// the repository and the manifest digest, the artifact its reference.
func TestResolveImage(t *testing.T) {
	reg := registrytest.Start(t)
	ref := reg.Repo("app") + ":1.0"
	digest := registrytest.PushRandom(t, ref)
	set, err := Resolve(context.Background(), Input{Images: []string{ref}}, oci.New(oci.Options{Insecure: true}))
	if err != nil {
		t.Fatal(err)
	}
	sub := set.Subjects[0]
	if sub.Name != reg.Repo("app") || "sha256:"+sub.Digest["sha256"] != digest || len(sub.Digest) != 1 {
		t.Fatalf("subject %+v, want %s %s", sub, reg.Repo("app"), digest)
	}
	if a := set.Artifacts[0]; a.Name != reg.Repo("app")+"@"+digest || len(a.Digests) != 1 || "sha256:"+a.Digests[0].Hex != digest {
		t.Fatalf("artifact %+v", a)
	}
	if got := ImageReferences(set.Subjects); !slices.Equal(got, []string{reg.Repo("app") + "@" + digest}) {
		t.Fatalf("ImageReferences: %q", got)
	}
}

func TestImageReferences(t *testing.T) {
	h := strings.Repeat("cd", 32)
	for _, tc := range []struct {
		name string
		sub  attest.Subject
		want bool
	}{
		{"registry with port", attest.Subject{Name: "127.0.0.1:5000/app", Digest: map[string]string{"sha256": h}}, true},
		{"registry host", attest.Subject{Name: "ghcr.io/org/app", Digest: map[string]string{"sha256": h}}, true},
		{"localhost", attest.Subject{Name: "localhost/app", Digest: map[string]string{"sha256": h}}, true},
		{"file", attest.Subject{Name: "app.tgz", Digest: map[string]string{"sha256": h}}, false},
		{"file in a directory", attest.Subject{Name: "dist/app.tgz", Digest: map[string]string{"sha256": h}}, false},
		{"sha512 only", attest.Subject{Name: "ghcr.io/org/app", Digest: map[string]string{"sha512": h + h}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ImageReferences([]attest.Subject{tc.sub})
			if (len(got) == 1) != tc.want {
				t.Fatalf("ImageReferences(%+v) = %q, want image: %v", tc.sub, got, tc.want)
			}
			if tc.want && got[0] != tc.sub.Name+"@sha256:"+h {
				t.Fatalf("reference %q", got[0])
			}
		})
	}
}
