package provenance

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/quorate-dev/quorate/internal/limitread"
	"github.com/quorate-dev/quorate/internal/strictjson"
)

// SBOM formats and their media types.
const (
	MediaTypeCycloneDX = "application/vnd.cyclonedx+json"
	MediaTypeSPDX      = "application/spdx+json"
)

// MaxSBOMBytes bounds an SBOM read by [SBOM].
const MaxSBOMBytes = 256 << 20

var specVersion = regexp.MustCompile(`^(?:SPDX-)?[0-9]{1,3}(?:\.[0-9]{1,3}){0,2}$`)

// SBOM reads the SBOM at path and returns it as a resource descriptor for
// runDetails.byproducts: named by its base name, with its SHA-256 digest,
// the media type of its format and a "specVersion" annotation. The format
// is detected from the document: CycloneDX JSON ("bomFormat": "CycloneDX"
// and a "specVersion") or SPDX JSON (an "spdxVersion", for SPDX 2, or an
// "@context" naming spdx.org, for SPDX 3). Anything else is refused.
//
// An SBOM is a byproduct, not a resolved dependency: the build produced it
// to describe its outputs; it was not an input of the build.
func SBOM(path string) (ResourceDescriptor, error) {
	data, err := limitread.ReadFile(path, MaxSBOMBytes)
	if err != nil {
		return ResourceDescriptor{}, fmt.Errorf("SBOM: %w", err)
	}
	format, version, err := detectSBOM(data)
	if err != nil {
		return ResourceDescriptor{}, fmt.Errorf("SBOM %s: %w", path, err)
	}
	d, err := fileDescriptor("SBOM", filepath.Base(path), data)
	if err != nil {
		return ResourceDescriptor{}, err
	}
	d.MediaType = format
	if version != "" {
		v, _ := json.Marshal(version)
		d.Annotations = map[string]json.RawMessage{"specVersion": v}
	}
	return d, nil
}

// Material reads the file at path and returns it as a resource descriptor
// for buildDefinition.resolvedDependencies: an input of the build, named by
// the path as given (cleaned) with its SHA-256 digest.
func Material(path string) (ResourceDescriptor, error) {
	data, err := limitread.ReadFile(path, MaxSBOMBytes)
	if err != nil {
		return ResourceDescriptor{}, fmt.Errorf("material: %w", err)
	}
	return fileDescriptor("material", filepath.ToSlash(filepath.Clean(path)), data)
}

// fileDescriptor names data by name and its SHA-256, refusing a name that
// is not printable or looks like a secret (without repeating it).
func fileDescriptor(what, name string, data []byte) (ResourceDescriptor, error) {
	if err := checkIdentifier(what+" name", name); err != nil {
		return ResourceDescriptor{}, err
	}
	if kind, bad := LooksLikeSecret(name); bad {
		return ResourceDescriptor{}, fmt.Errorf("%s: the file name looks like a credential (%s); rename the file", what, kind)
	}
	sum := sha256.Sum256(data)
	return ResourceDescriptor{Name: name, Digest: map[string]string{"sha256": hex.EncodeToString(sum[:])}}, nil
}

// detectSBOM returns the media type and spec version of a CycloneDX or
// SPDX JSON document, reading its top-level members with the strict
// scanner (so the document is also checked for duplicate keys).
func detectSBOM(data []byte) (mediaType, version string, err error) {
	w := strictjson.NewWalker(data)
	top := map[string]string{}
	err = w.Object(func(key []byte, plain bool) error {
		k := string(key)
		if !plain || (k != "bomFormat" && k != "specVersion" && k != "spdxVersion" && k != "@context") {
			return nil
		}
		if w.Kind() == '"' {
			raw, plain, err := w.String()
			if err == nil && plain {
				top[k] = string(raw)
			}
			return err
		}
		raw, err := w.Skip()
		top[k] = string(raw) // an @context array or object, searched for spdx.org below
		return err
	})
	if err == nil {
		err = w.End()
	}
	if err != nil {
		return "", "", fmt.Errorf("neither a CycloneDX JSON nor an SPDX JSON document: %w", err)
	}
	switch {
	case top["bomFormat"] == "CycloneDX":
		version = top["specVersion"]
		if !specVersion.MatchString(version) {
			return "", "", fmt.Errorf("CycloneDX document without a valid specVersion")
		}
		return MediaTypeCycloneDX, version, nil
	case top["spdxVersion"] != "":
		version = top["spdxVersion"]
		if !specVersion.MatchString(version) {
			return "", "", fmt.Errorf("SPDX document with an invalid spdxVersion")
		}
		return MediaTypeSPDX, version, nil
	case strings.Contains(top["@context"], "spdx.org/rdf/3"):
		return MediaTypeSPDX, "3", nil
	}
	return "", "", fmt.Errorf("neither a CycloneDX JSON nor an SPDX JSON document")
}
