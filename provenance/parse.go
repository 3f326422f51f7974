package provenance

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/internal/strictjson"
)

// Limits bound what [Parse] accepts.
type Limits struct {
	MaxBytes       int64 // the document
	MaxSubjects    int
	MaxDescriptors int // resolvedDependencies + byproducts + builderDependencies
}

// DefaultLimits are the limits [Parse] uses for zero fields.
var DefaultLimits = Limits{MaxBytes: 8 << 20, MaxSubjects: 1024, MaxDescriptors: 4096}

func (l Limits) orDefault() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultLimits.MaxBytes
	}
	if l.MaxSubjects <= 0 {
		l.MaxSubjects = DefaultLimits.MaxSubjects
	}
	if l.MaxDescriptors <= 0 {
		l.MaxDescriptors = DefaultLimits.MaxDescriptors
	}
	return l
}

// Provenance is a parsed and checked SLSA Provenance v1 document.
type Provenance struct {
	// Subjects are the subjects of the in-toto Statement the predicate came
	// in, or nil for a bare predicate (whose subjects are those of the
	// statement that embeds or references it).
	Subjects  []attest.Subject
	Predicate Predicate
	// Source is the build's source: the first resolved dependency with a
	// gitCommit digest, if any.
	Source *Source
	// Tools are the tool versions of internalParameters.tools, if any.
	Tools map[string]string
	// SHA256 is the hex SHA-256 of the bytes parsed.
	SHA256 string
}

// Source is a build's source repository, commit and ref.
type Source struct {
	URI        string // as written, e.g. git+https://github.com/acme/app@refs/tags/v1.2.0
	Repository string // without "git+" and "@ref", e.g. https://github.com/acme/app
	Ref        string // e.g. refs/tags/v1.2.0; "" if the provenance does not say
	Commit     string // the gitCommit digest
}

// Parse reads a SLSA Provenance v1 document: a bare predicate, an in-toto
// Statement (v1 or v0.1) carrying one, or a DSSE envelope carrying such a
// statement (whose signatures are not checked: what binds the document is
// the quorate attestation that embeds or references it).
//
// It refuses, with [ErrTooLarge] or [ErrMalformed]: input over
// l.MaxBytes (zero fields of l mean [DefaultLimits]); invalid JSON or UTF-8;
// duplicate keys (compared as encoding/json compares field names);
// unknown fields, keys that match a field only without regard to case, nulls
// and values of the wrong JSON type anywhere in the fixed parts of the
// schema; another statement or predicate type; subjects without a strong
// digest; resource descriptors with nothing to identify them or malformed
// digests; refs that disagree between the source URI and the external
// parameters; and strings a party could be misled by (control, bidirectional
// and invisible characters).
func Parse(data []byte, l Limits) (*Provenance, error) {
	l = l.orDefault()
	if int64(len(data)) > l.MaxBytes {
		return nil, fmt.Errorf("%w: %d bytes, over the %d-byte limit", ErrTooLarge, len(data), l.MaxBytes)
	}
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("%w: not valid UTF-8", ErrMalformed)
	}
	if err := strictjson.CheckDuplicates(data); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object: %w", ErrMalformed, strictjson.Describe(err))
	}
	sum := sha256.Sum256(data)
	digest := hex.EncodeToString(sum[:])
	switch {
	case probe["payloadType"] != nil:
		env, payload, err := attest.ParseEnvelope(data, attest.Limits{MaxBytes: l.MaxBytes})
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		if env.PayloadType != attest.PayloadType {
			return nil, fmt.Errorf("%w: envelope payloadType %q is not %s", ErrMalformed, env.PayloadType, attest.PayloadType)
		}
		p, err := parseStatement(payload, l)
		if err != nil {
			return nil, fmt.Errorf("envelope payload: %w", err)
		}
		p.SHA256 = digest
		return p, nil
	case probe["_type"] != nil:
		p, err := parseStatement(data, l)
		if err != nil {
			return nil, err
		}
		p.SHA256 = digest
		return p, nil
	case probe["buildDefinition"] != nil:
		p, err := parsePredicate(data, l)
		if err != nil {
			return nil, err
		}
		p.SHA256 = digest
		return p, nil
	}
	return nil, fmt.Errorf("%w: neither a SLSA Provenance v1 predicate, an in-toto Statement nor a DSSE envelope", ErrMalformed)
}

// Resolve returns the provenance an attestation's predicate carries: the
// embedded predicate, or the referenced document, which the caller supplies
// (quorate never fetches it) and whose SHA-256 must be the referenced
// digest. With no provenance it returns [ErrMissing]; with a reference and
// no supplied document, [ErrNotSupplied]; with a document of another digest,
// [ErrDigestMismatch].
func Resolve(ref *attest.Provenance, supplied []byte, l Limits) (*Provenance, error) {
	switch {
	case ref == nil:
		return nil, ErrMissing
	case ref.PredicateType != PredicateType:
		return nil, fmt.Errorf("%w: provenance predicateType %q is not %s", ErrMalformed, ref.PredicateType, PredicateType)
	case ref.URI == "":
		if len(ref.Predicate) == 0 || string(ref.Predicate) == "null" {
			return nil, ErrMissing
		}
		return parsePredicate(ref.Predicate, l.orDefault())
	}
	want := ref.Digest["sha256"]
	if len(want) != 2*sha256.Size {
		return nil, fmt.Errorf("%w: referenced provenance %s has no sha256 digest", ErrMalformed, ref.URI)
	}
	if supplied == nil {
		return nil, fmt.Errorf("%w: provenance is referenced (%s, sha256:%s); supply the file", ErrNotSupplied, ref.URI, want)
	}
	sum := sha256.Sum256(supplied)
	if got := hex.EncodeToString(sum[:]); got != want {
		return nil, &DigestMismatchError{URI: ref.URI, Want: want, Got: got}
	}
	return Parse(supplied, l)
}

// DigestMismatchError is a supplied referenced provenance whose digest is
// not the one the attestation names.
type DigestMismatchError struct {
	URI       string
	Want, Got string // hex SHA-256
}

func (e *DigestMismatchError) Error() string {
	return fmt.Sprintf("referenced provenance %s has digest sha256:%s, but the supplied file has sha256:%s", e.URI, e.Want, e.Got)
}

// Is makes errors.Is(err, ErrDigestMismatch) true.
func (e *DigestMismatchError) Is(target error) bool { return target == ErrDigestMismatch }

func parseStatement(data []byte, l Limits) (*Provenance, error) {
	var st attest.Statement
	if err := decodeStrict(data, &st, "statement"); err != nil {
		return nil, err
	}
	if st.Type != StatementType && st.Type != StatementTypeV01 {
		return nil, fmt.Errorf("%w: statement _type %q is not an in-toto Statement (%s)", ErrMalformed, st.Type, StatementType)
	}
	if st.PredicateType != PredicateType {
		return nil, fmt.Errorf("%w: statement predicateType %q is not %s", ErrMalformed, st.PredicateType, PredicateType)
	}
	if len(st.Subject) == 0 {
		return nil, fmt.Errorf("%w: statement has no subjects", ErrMalformed)
	}
	if len(st.Subject) > l.MaxSubjects {
		return nil, fmt.Errorf("%w: %d subjects, over the limit of %d", ErrTooLarge, len(st.Subject), l.MaxSubjects)
	}
	for i, s := range st.Subject {
		if err := attest.CheckSubject(s); err != nil {
			return nil, fmt.Errorf("%w: subject[%d]: %w", ErrMalformed, i, err)
		}
	}
	p, err := parsePredicate(st.Predicate, l)
	if err != nil {
		return nil, fmt.Errorf("predicate: %w", err)
	}
	p.Subjects = st.Subject
	return p, nil
}

func parsePredicate(data []byte, l Limits) (*Provenance, error) {
	var pred Predicate
	if err := decodeStrict(data, &pred, "predicate"); err != nil {
		return nil, err
	}
	if err := checkStrings("predicate", data); err != nil {
		return nil, err
	}
	p := &Provenance{Predicate: pred}
	bd, rd := &pred.BuildDefinition, &pred.RunDetails
	var errs []error
	if bd.BuildType == "" {
		errs = append(errs, errors.New("buildDefinition.buildType is empty"))
	}
	if err := checkIdentifier("buildDefinition.buildType", bd.BuildType); err != nil {
		errs = append(errs, err)
	}
	if !isObject(bd.ExternalParameters) {
		errs = append(errs, errors.New("buildDefinition.externalParameters must be an object"))
	}
	if len(bd.InternalParameters) > 0 && !isObject(bd.InternalParameters) {
		errs = append(errs, errors.New("buildDefinition.internalParameters must be an object"))
	}
	if rd.Builder.ID == "" {
		errs = append(errs, errors.New("runDetails.builder.id is empty"))
	}
	if err := checkIdentifier("runDetails.builder.id", rd.Builder.ID); err != nil {
		errs = append(errs, err)
	}
	if n := len(bd.ResolvedDependencies) + len(rd.Byproducts) + len(rd.Builder.BuilderDependencies); n > l.MaxDescriptors {
		return nil, fmt.Errorf("%w: %d resource descriptors, over the limit of %d", ErrTooLarge, n, l.MaxDescriptors)
	}
	for field, list := range map[string][]ResourceDescriptor{
		"buildDefinition.resolvedDependencies":   bd.ResolvedDependencies,
		"runDetails.byproducts":                  rd.Byproducts,
		"runDetails.builder.builderDependencies": rd.Builder.BuilderDependencies,
	} {
		for i, d := range list {
			if err := checkDescriptor(d); err != nil {
				errs = append(errs, fmt.Errorf("%s[%d]: %w", field, i, err))
			}
		}
	}
	if m := rd.Metadata; m != nil {
		if err := checkIdentifier("runDetails.metadata.invocationId", m.InvocationID); err != nil {
			errs = append(errs, err)
		}
		if !m.StartedOn.IsZero() && !m.FinishedOn.IsZero() && m.FinishedOn.Before(m.StartedOn) {
			errs = append(errs, errors.New("runDetails.metadata.finishedOn is before startedOn"))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	src, err := findSource(&pred)
	if err != nil {
		return nil, err
	}
	p.Source = src
	if p.Tools, err = findTools(bd.InternalParameters); err != nil {
		return nil, err
	}
	return p, nil
}

// knownDigests are digest algorithms whose values must be lower-case hex of
// one of the given lengths (in hex digits).
var knownDigests = map[string][]int{
	"sha256": {64}, "sha384": {96}, "sha512": {128}, "sha1": {40}, "sha224": {56},
	"sha512_224": {56}, "sha512_256": {64}, "sha3_224": {56}, "sha3_256": {64}, "sha3_384": {96}, "sha3_512": {128},
	"md5": {32}, GitCommit: {40, 64}, "gitTree": {40, 64}, "gitBlob": {40, 64}, "gitTag": {40, 64},
}

func checkDescriptor(d ResourceDescriptor) error {
	if d.URI == "" && len(d.Digest) == 0 && len(d.Content) == 0 {
		return errors.New("a resource descriptor needs a uri, a digest or content")
	}
	for _, f := range []struct{ name, v string }{{"uri", d.URI}, {"name", d.Name}, {"downloadLocation", d.DownloadLocation}, {"mediaType", d.MediaType}} {
		if err := checkIdentifier(f.name, f.v); err != nil {
			return err
		}
	}
	return checkDigestSet(d.Digest)
}

func checkDigestSet(d map[string]string) error {
	for _, alg := range slices.Sorted(maps.Keys(d)) {
		v := d[alg]
		if err := checkIdentifier("digest algorithm", alg); err != nil {
			return err
		}
		sizes, known := knownDigests[alg]
		if !known {
			if v == "" {
				return fmt.Errorf("digest %s is empty", alg)
			}
			if err := checkIdentifier("digest."+alg, v); err != nil {
				return err
			}
			continue
		}
		if !slices.Contains(sizes, len(v)) || !isLowerHex(v) {
			return fmt.Errorf("digest %s is not lower-case hex of the right length", alg)
		}
	}
	return nil
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return s != ""
}

func isObject(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '{'
}

// findSource returns the first resolved dependency with a gitCommit digest
// as the source, its ref taken from the URI's "@refs/…" suffix or, if the
// URI has none, from externalParameters.workflow.ref or
// externalParameters.source.ref; refs given in more than one place must
// agree.
func findSource(pred *Predicate) (*Source, error) {
	var src *Source
	for _, d := range pred.BuildDefinition.ResolvedDependencies {
		if c, ok := d.Digest[GitCommit]; ok {
			src = &Source{URI: d.URI, Commit: c}
			repo := strings.TrimPrefix(d.URI, "git+")
			if i := strings.LastIndex(repo, "@"); i >= 0 && strings.HasPrefix(repo[i+1:], "refs/") {
				repo, src.Ref = repo[:i], repo[i+1:]
			}
			src.Repository = repo
			if u, err := url.Parse(repo); err != nil || u.Scheme == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
				return nil, fmt.Errorf("%w: the source URI (resolvedDependencies, gitCommit) is not a repository URL without credentials, query or fragment", ErrMalformed)
			}
			break
		}
	}
	var ext map[string]json.RawMessage
	if err := json.Unmarshal(pred.BuildDefinition.ExternalParameters, &ext); err != nil {
		return nil, fmt.Errorf("%w: buildDefinition.externalParameters: %w", ErrMalformed, strictjson.Describe(err))
	}
	for _, holder := range []string{"workflow", "source"} {
		var h struct {
			Ref json.RawMessage `json:"ref"`
		}
		raw, ok := ext[holder]
		if !ok || !isObject(raw) {
			continue
		}
		if err := json.Unmarshal(raw, &h); err != nil || len(h.Ref) == 0 {
			continue
		}
		var ref string
		if err := json.Unmarshal(h.Ref, &ref); err != nil {
			return nil, fmt.Errorf("%w: buildDefinition.externalParameters.%s.ref is not a string", ErrMalformed, holder)
		}
		if err := checkIdentifier("buildDefinition.externalParameters."+holder+".ref", ref); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		switch {
		case src == nil:
			// A ref without a source commit binds nothing: ignore it.
		case src.Ref == "":
			src.Ref = ref
		case src.Ref != ref:
			return nil, fmt.Errorf("%w: source ref %s (in the source URI) disagrees with externalParameters.%s.ref %s", ErrMalformed, src.Ref, holder, ref)
		}
	}
	return src, nil
}

// findTools reads internalParameters.tools, an object of tool name to
// version string, if present.
func findTools(internal json.RawMessage) (map[string]string, error) {
	if len(internal) == 0 {
		return nil, nil
	}
	var ip map[string]json.RawMessage
	if err := json.Unmarshal(internal, &ip); err != nil {
		return nil, fmt.Errorf("%w: buildDefinition.internalParameters: %w", ErrMalformed, strictjson.Describe(err))
	}
	raw, ok := ip["tools"]
	if !ok {
		return nil, nil
	}
	var tools map[string]string
	if !isObject(raw) || json.Unmarshal(raw, &tools) != nil {
		return nil, fmt.Errorf("%w: buildDefinition.internalParameters.tools must be an object of version strings", ErrMalformed)
	}
	for name := range tools {
		if !validToolName(name) {
			return nil, fmt.Errorf("%w: buildDefinition.internalParameters.tools: tool name %q is not [a-z0-9][a-z0-9._+-]* (at most 64)", ErrMalformed, name)
		}
	}
	return tools, nil
}

// decodeStrict decodes data into v with [strictjson.Unmarshal] and then
// refuses, anywhere in v's fixed schema, keys that match a field only
// without regard to case, and nulls (encoding/json would accept both
// silently: "BuildType" as buildType, null as "not there").
func decodeStrict(data []byte, v any, what string) error {
	if err := strictjson.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrMalformed, what, err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var generic any
	if err := dec.Decode(&generic); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrMalformed, what, err)
	}
	if err := checkShape(generic, reflect.TypeOf(v).Elem(), "$"); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrMalformed, what, err)
	}
	return nil
}

var (
	rawType  = reflect.TypeFor[json.RawMessage]()
	timeType = reflect.TypeFor[time.Time]()
)

func checkShape(v any, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == rawType || t.Kind() == reflect.Interface {
		return nil // free-form
	}
	if v == nil {
		return fmt.Errorf("%s is null", path)
	}
	switch {
	case t == timeType:
		if _, ok := v.(string); !ok {
			return fmt.Errorf("%s is not a string", path)
		}
	case t.Kind() == reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s is not an object", path)
		}
		fields := make(map[string]reflect.Type, t.NumField())
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name != "" && name != "-" {
				fields[name] = f.Type
			}
		}
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			ft, ok := fields[k]
			if !ok {
				return fmt.Errorf("%s: unknown field %s (field names are case-sensitive)", path, strconv.Quote(k))
			}
			if err := checkShape(obj[k], ft, path+"."+k); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
		if _, ok := v.(string); !ok {
			return fmt.Errorf("%s is not a base64 string", path)
		}
	case t.Kind() == reflect.Slice:
		arr, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%s is not an array", path)
		}
		for i, e := range arr {
			if err := checkShape(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s is not an object", path)
		}
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			if err := checkShape(obj[k], t.Elem(), path+"."+strconv.Quote(k)); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.String:
		if _, ok := v.(string); !ok {
			return fmt.Errorf("%s is not a string", path)
		}
	}
	return nil
}
