package provenance

import (
	"math"
	"regexp"
	"strings"
)

var secretPatterns = []struct {
	kind string
	re   *regexp.Regexp
}{
	{"GitHub token", regexp.MustCompile(`(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}`)},
	{"GitLab token", regexp.MustCompile(`gl[a-z]{1,6}-[A-Za-z0-9_-]{20,}|GR1348941[A-Za-z0-9_-]{10,}`)},
	{"AWS access key ID", regexp.MustCompile(`(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA)[A-Z0-9]{16}`)},
	{"Slack token", regexp.MustCompile(`(?:xox[abeoprs]|xapp)-[A-Za-z0-9-]{10,}|hooks\.slack\.com/services/`)},
	{"JSON Web Token", regexp.MustCompile(`eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}`)},
	{"PEM private key", regexp.MustCompile(`-----BEGIN[A-Z0-9 ]*PRIVATE KEY`)},
	{"API token", regexp.MustCompile(`npm_[A-Za-z0-9]{30,}|pypi-AgE[A-Za-z0-9_-]{20,}|AIza[0-9A-Za-z_-]{30,}|(?:sk|rk)_live_[A-Za-z0-9]{16,}|hv[sb]\.[A-Za-z0-9_-]{20,}|SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}`)},
	{"credentials in a URL", regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^/?#\s]*@`)},
	{"secret assignment", regexp.MustCompile(`(?i)(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credentials?)\s*[=:]\s*\S`)},
}

var (
	hexRun    = regexp.MustCompile(`[0-9A-Fa-f]{32,}`)
	urlRun    = regexp.MustCompile(`[A-Za-z0-9_-]{20,}`)
	base64Run = regexp.MustCompile(`[A-Za-z0-9+/=]{40,}`)
	digestTag = regexp.MustCompile(`(?i)(?:sha1|sha224|sha256|sha384|sha512|sha3-256|sha3-512|gitcommit|gittree|md5)[:=@]$`)
)

// LooksLikeSecret reports whether s looks like it holds a credential, and
// which kind (as in "GitHub token").
//
// [Capture] applies it to every string it reads from the
// environment or from a tool, and then again to every string of the
// serialized provenance (digest values aside). A value it flags is never
// written: an optional value (a captured variable, a tool version, a runner
// name) is left out with a warning naming the variable, an identifying value
// (repository, ref, workflow, builder, invocation) makes capture fail. Neither
// the warning nor the error repeats the value.
//
// It flags, anywhere in the string:
//   - GitHub tokens: ghp_, gho_, ghu_, ghs_, ghr_ followed by 20+
//     alphanumerics, and github_pat_ fine-grained tokens;
//   - GitLab tokens: glpat-, and the other gl…- prefixes (gldt-, glrt-,
//     glptt-, glcbt-, glsoat-, glft-, glimt-, glagent-, glffct-…) followed by
//     20+ characters, and runner registration tokens (GR1348941…);
//   - AWS access key IDs (AKIA, ASIA and the other 4-letter prefixes followed
//     by 16 upper-case alphanumerics) and 40-character secret access keys
//     (see the generic base64 rule);
//   - Slack tokens (xoxa-, xoxb-, xoxp-, xoxr-, xoxs-, xoxe-, xapp-) and
//     webhooks (hooks.slack.com/services/);
//   - JSON Web Tokens (eyJ….eyJ…, two base64url segments of 10+ characters);
//   - PEM private keys (-----BEGIN … PRIVATE KEY);
//   - a few other well-known prefixes: npm_, pypi-AgE, AIza (Google API
//     keys), sk_live_/rk_live_ (Stripe), hvs./hvb. (Vault), SG. (SendGrid);
//   - credentials in URLs: any userinfo (https://user@host, https://user:pass@host);
//   - assignments of secret-named keys: password=, token:, secret=, api_key=…;
//   - generic high-entropy strings:
//   - a run of 32 or more hex digits (40-hex GitHub OAuth tokens, API keys);
//     a run that follows a digest algorithm label ("sha256:…") is a digest,
//     not a secret;
//   - a run of 20 or more characters of [A-Za-z0-9_-] that mixes upper case,
//     lower case and digits, switches between those classes at 40% or more
//     of its adjacent pairs (random text: about 60%; CamelCase words with a
//     number: 20-35%) and has a Shannon entropy of at least 3.5 bits per
//     character; or one of 32 or more that mixes letters and digits,
//     switches at 30% or more and has at least 4 bits per character. (On
//     random strings this flags about 94% of 20-character and 99.6% of
//     32-character alphanumeric ones, and 80% of 32-character lower-case
//     base36 ones.)
//   - a run of 40 or more characters of standard base64 ([A-Za-z0-9+/=],
//     so across slashes) that mixes upper case, lower case and digits,
//     switches at 40% or more and has at least 4.3 bits per character (an
//     AWS secret access key).
//
// These are heuristics: they refuse some harmless strings (a branch named
// after a random-looking identifier) and cannot recognise every secret (a
// short or low-entropy password). That is why capture reads only
// allow-listed variables in the first place, and refuses to allow-list a
// variable whose name says it holds a secret ([SecretName]).

func LooksLikeSecret(s string) (kind string, found bool) {
	for _, p := range secretPatterns {
		if p.re.MatchString(s) {
			return p.kind, true
		}
	}
	for _, loc := range hexRun.FindAllStringIndex(s, -1) {
		if !digestTag.MatchString(s[:loc[0]]) {
			return "high-entropy hex string", true
		}
	}
	for _, run := range urlRun.FindAllString(s, -1) {
		upper, lower, digit := classes(run)
		bits, sw := entropy(run), switches(run)
		if upper && lower && digit && sw >= 0.4 && bits >= 3.5 || len(run) >= 32 && (upper || lower) && digit && sw >= 0.3 && bits >= 4 {
			return "high-entropy string", true
		}
	}
	for _, run := range base64Run.FindAllString(s, -1) {
		if upper, lower, digit := classes(run); upper && lower && digit && switches(run) >= 0.4 && entropy(run) >= 4.3 {
			return "high-entropy base64 string", true
		}
	}
	return "", false
}

// SecretName reports whether an environment variable's name says it holds
// a secret (TOKEN, SECRET, PASSWORD, KEY, CREDENTIAL, AUTH, …): such a
// variable cannot be allow-listed for capture.
func SecretName(name string) bool {
	n := strings.ToUpper(name)
	for _, w := range []string{"TOKEN", "SECRET", "PASSWORD", "PASSWD", "PASS", "KEY", "CREDENTIAL", "AUTH", "COOKIE", "SESSION", "PRIVATE", "CERT", "SIGNATURE", "SALT"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

func classes(s string) (upper, lower, digit bool) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'A' <= c && c <= 'Z':
			upper = true
		case 'a' <= c && c <= 'z':
			lower = true
		case '0' <= c && c <= '9':
			digit = true
		}
	}
	return
}

// switches is the share of adjacent pairs of s whose characters are of
// different classes (upper case, lower case, digit, other): about 0.6 for a
// random alphanumeric string, 0.2-0.35 for CamelCase words with a number.
func switches(s string) float64 {
	if len(s) < 2 {
		return 0
	}
	class := func(c byte) byte {
		switch {
		case 'A' <= c && c <= 'Z':
			return 'A'
		case 'a' <= c && c <= 'z':
			return 'a'
		case '0' <= c && c <= '9':
			return '0'
		}
		return c
	}
	n := 0
	for i := 1; i < len(s); i++ {
		if class(s[i]) != class(s[i-1]) {
			n++
		}
	}
	return float64(n) / float64(len(s)-1)
}

// entropy is the Shannon entropy of s's bytes, in bits per byte.
func entropy(s string) float64 {
	var counts [256]int
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	n := float64(len(s))
	var h float64
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}
