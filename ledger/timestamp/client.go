package timestamp

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	rfc3161 "github.com/digitorus/timestamp"

	"github.com/quorate-dev/quorate/internal/display"
)

// Content types of RFC 3161 over HTTP (§3.4).
const (
	QueryContentType = "application/timestamp-query"
	ReplyContentType = "application/timestamp-reply"
)

// Client asks one TSA for timestamps over HTTP (RFC 3161 §3.4). It is safe
// for concurrent use.
type Client struct {
	url   string
	http  *http.Client
	trust *Trust
}

// ClientOption configures a [Client].
type ClientOption func(*Client) error

// WithHTTPClient sets the HTTP client (default: one with a 30 s timeout).
func WithHTTPClient(h *http.Client) ClientOption {
	return func(c *Client) error {
		if h == nil {
			return errors.New("nil HTTP client")
		}
		c.http = h
		return nil
	}
}

// WithTrust makes the client verify every token it receives against the
// trust ([Trust.VerifyToken]), so a misconfigured or untrusted TSA is
// noticed when the token is obtained rather than when a bundle is checked.
func WithTrust(t *Trust) ClientOption {
	return func(c *Client) error {
		if t == nil {
			return errors.New("nil trust")
		}
		c.trust = t
		return nil
	}
}

// NewClient returns a client for the TSA at rawURL (http or https).
func NewClient(rawURL string, opts ...ClientOption) (*Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil, fmt.Errorf("timestamp: TSA URL %q: want http(s)://host/path without credentials", rawURL)
	}
	c := &Client{url: u.String(), http: &http.Client{Timeout: 30 * time.Second}}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, fmt.Errorf("timestamp: TSA %s: %w", c.url, err)
		}
	}
	return c, nil
}

// URL returns the TSA's URL.
func (c *Client) URL() string { return c.url }

// Token is a token a TSA returned, checked against the request.
type Token struct {
	TSA      string // the TSA's URL
	DER      []byte // the TimeStampToken (CMS SignedData), as bundles carry it
	GenTime  time.Time
	Accuracy time.Duration
	// Stamp is the verified token when the client has a trust
	// ([WithTrust]), nil otherwise.
	Stamp *Stamp
}

type pkiStatusInfo struct {
	Status       int
	StatusString []string       `asn1:"optional,utf8"`
	FailInfo     asn1.BitString `asn1:"optional"`
}

type timeStampResp struct {
	Status pkiStatusInfo
	Token  asn1.RawValue `asn1:"optional"`
}

// Timestamp asks the TSA for a token over digest (a SHA-256 hash): a
// TimeStampReq with that imprint, a fresh 128-bit random nonce and certReq
// set, POSTed as application/timestamp-query. It checks the response:
// HTTP 200 with an application/timestamp-reply body of at most
// [MaxTokenSize] bytes, PKIStatus granted (or granted with modifications),
// a token whose CMS signature verifies with the certificate it carries (it
// must carry one: certReq) valid at its signing time, the same SHA-256
// imprint and the same nonce.
// With [WithTrust], the token is also verified against the trust.
func (c *Client) Timestamp(ctx context.Context, digest [sha256.Size]byte) (*Token, error) {
	nonceBytes := make([]byte, 16)
	if _, err := rand.Read(nonceBytes); err != nil {
		return nil, fmt.Errorf("timestamp: nonce: %w", err)
	}
	nonce := new(big.Int).SetBytes(nonceBytes)
	req := &rfc3161.Request{HashAlgorithm: crypto.SHA256, HashedMessage: digest[:], Certificates: true, Nonce: nonce}
	body, err := req.Marshal()
	if err != nil {
		return nil, fmt.Errorf("timestamp: TSA %s: encoding the request: %w", c.url, err)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: TSA %s: %w", ErrUnavailable, c.url, err)
	}
	hreq.Header.Set("Content-Type", QueryContentType)
	hreq.Header.Set("Accept", ReplyContentType)
	resp, err := c.http.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("%w: TSA %s: %w", ErrUnavailable, c.url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxTokenSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: TSA %s: reading the response: %w", ErrUnavailable, c.url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: TSA %s answered HTTP %d: %s", ErrUnavailable, c.url, resp.StatusCode, display.String(string(data[:min(len(data), 200)])))
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != ReplyContentType {
		return nil, fmt.Errorf("%w: TSA %s answered with content type %q, want %s", ErrUnavailable, c.url, resp.Header.Get("Content-Type"), ReplyContentType)
	}
	if len(data) > MaxTokenSize {
		return nil, fmt.Errorf("%w: TSA %s: response larger than %d bytes", ErrMalformedToken, c.url, MaxTokenSize)
	}
	return c.check(digest, nonce, data)
}

// check reads a TimeStampResp and checks it against the request.
func (c *Client) check(digest [sha256.Size]byte, nonce *big.Int, data []byte) (*Token, error) {
	var tr timeStampResp
	rest, err := asn1.Unmarshal(data, &tr)
	if err != nil || len(rest) > 0 {
		return nil, fmt.Errorf("%w: TSA %s: response is not a TimeStampResp (err %v, %d trailing bytes)", ErrMalformedToken, c.url, err, len(rest))
	}
	if st := tr.Status.Status; st != int(rfc3161.Granted) && st != int(rfc3161.GrantedWithMods) {
		return nil, fmt.Errorf("%w: TSA %s: %s: %s (failure info bits %x)", ErrRejected, c.url, rfc3161.Status(st), display.String(strings.Join(tr.Status.StatusString, "; ")), tr.Status.FailInfo.Bytes)
	}
	der := tr.Token.FullBytes
	if len(der) == 0 {
		return nil, fmt.Errorf("%w: TSA %s granted the request without a token", ErrMalformedToken, c.url)
	}
	pt, err := parseToken(der, nil)
	if err != nil {
		return nil, fmt.Errorf("TSA %s: %w", c.url, err)
	}
	ts := pt.ts
	if len(pt.embedded) == 0 {
		return nil, fmt.Errorf("%w: TSA %s: token without its certificate although certReq was set", ErrMalformedToken, c.url)
	}
	if ts.Nonce == nil || ts.Nonce.Cmp(nonce) != 0 {
		return nil, fmt.Errorf("%w: TSA %s: sent %x, got %x", ErrNonceMismatch, c.url, nonce, ts.Nonce)
	}
	if !bytes.Equal(ts.HashedMessage, digest[:]) {
		return nil, fmt.Errorf("%w: TSA %s timestamped %x, want %x", ErrBadImprint, c.url, ts.HashedMessage, digest[:])
	}
	tok := &Token{TSA: c.url, DER: bytes.Clone(der), GenTime: ts.Time.UTC(), Accuracy: ts.Accuracy}
	if c.trust != nil {
		s, err := c.trust.VerifyToken(digest, der)
		if err != nil {
			return nil, fmt.Errorf("TSA %s: %w", c.url, err)
		}
		tok.Stamp = s
	}
	return tok, nil
}

// TimestampAll asks every client at once for a token over digest and
// returns the tokens obtained, in client order, and the failures joined
// (nil when every TSA answered). One TSA that is slow or down delays only
// its own token, up to ctx and its HTTP timeout.
func TimestampAll(ctx context.Context, clients []*Client, digest [sha256.Size]byte) ([]*Token, error) {
	toks := make([]*Token, len(clients))
	errs := make([]error, len(clients))
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() { toks[i], errs[i] = c.Timestamp(ctx, digest) })
	}
	wg.Wait()
	var out []*Token
	for _, t := range toks {
		if t != nil {
			out = append(out, t)
		}
	}
	return out, errors.Join(errs...)
}
