package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/quorate-dev/quorate/attest"
)

// Client speaks the coordinator's HTTP API.
type Client struct {
	BaseURL string       // e.g. https://quorate.example:8443
	HTTP    *http.Client // nil: http.DefaultClient
	Token   string       // bearer token for reads, if the coordinator needs one
}

// APIError is an error response from the coordinator.
type APIError struct {
	Status int
	Code   string
	Msg    string
	// Reason is the policy reason code of a refusal (ErrorBody.Reason), or "".
	Reason string
}

// CodeNotCoordinator is the code of an [APIError] for an answer that is not
// a quorate coordinator's (a web server's HTML error page, a proxy's).
const CodeNotCoordinator = "not_a_coordinator"

func (e *APIError) Error() string {
	if e.Code == CodeNotCoordinator {
		return e.Msg
	}
	return fmt.Sprintf("coordinator: %s (HTTP %d, %s)", e.Msg, e.Status, e.Code)
}

// Retryable reports whether retrying later may succeed.
func (e *APIError) Retryable() bool {
	return e.Status == http.StatusServiceUnavailable || e.Status == http.StatusTooManyRequests
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, body)
	if err != nil {
		return fmt.Errorf("coordinator URL: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("contacting coordinator: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("reading coordinator response: %w", err)
	}
	if resp.StatusCode >= 300 {
		var eb ErrorBody
		if json.Unmarshal(data, &eb) != nil || (eb.Error == "" && eb.Code == "") {
			// Not the API's error shape: one line, never the page. A
			// coordinator (which sets X-Request-Id on every answer) without
			// this route is older or configured without it.
			if resp.Header.Get("X-Request-Id") != "" {
				return &APIError{Status: resp.StatusCode, Code: "not_served",
					Msg: fmt.Sprintf("the coordinator at %s does not serve %s %s (an older version, or the feature is off)", c.BaseURL, method, path)}
			}
			return &APIError{Status: resp.StatusCode, Code: CodeNotCoordinator,
				Msg: fmt.Sprintf("not a quorate coordinator at %s: HTTP %d", c.BaseURL, resp.StatusCode)}
		}
		return &APIError{Status: resp.StatusCode, Code: eb.Code, Msg: eb.Error, Reason: eb.Reason}
	}
	if out == nil {
		return nil
	}
	if raw, ok := out.(*[]byte); ok {
		*raw = data
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("not a quorate coordinator at %s? its answer to %s %s is not the API's JSON: %w", c.BaseURL, method, path, err)
	}
	return nil
}

// Policy fetches the policy the coordinator enforces.
func (c *Client) Policy(ctx context.Context) (*PolicyView, error) {
	var v PolicyView
	return &v, c.do(ctx, http.MethodGet, "/v1/policy", nil, &v)
}

// Open opens a request.
func (c *Client) Open(ctx context.Context, in OpenInput) (*RequestView, error) {
	var v RequestView
	return &v, c.do(ctx, http.MethodPost, "/v1/requests", in, &v)
}

// Get fetches a request.
func (c *Client) Get(ctx context.Context, id string) (*RequestView, error) {
	var v RequestView
	return &v, c.do(ctx, http.MethodGet, "/v1/requests/"+url.PathEscape(id), nil, &v)
}

// List lists the summaries of requests in a state ("" for all), oldest
// first, following the coordinator's pages until it has limit of them
// (limit <= 0: every one).
func (c *Client) List(ctx context.Context, state State, limit int) ([]RequestSummary, error) {
	q := url.Values{}
	if state != "" {
		q.Set("state", string(state))
	}
	return listPages(ctx, c, "/v1/requests", q, limit, func(p *listPageView[RequestSummary]) []RequestSummary { return p.Requests })
}

// listPageView is one page of a listing as the coordinator sends it.
type listPageView[T any] struct {
	Requests []T    `json:"requests"`
	Changes  []T    `json:"changes"`
	Next     string `json:"next"`
}

// listPages fetches the pages of the listing at path (with query q) until
// it has limit items (limit <= 0: all of them) or no page follows.
func listPages[T any](ctx context.Context, c *Client, path string, q url.Values, limit int, items func(*listPageView[T]) []T) ([]T, error) {
	all := []T{}
	after := ""
	for {
		n := MaxListLimit
		if limit > 0 {
			n = min(n, limit-len(all))
		}
		q.Set("limit", strconv.Itoa(n))
		if after != "" {
			q.Set("after", after)
		}
		var page listPageView[T]
		if err := c.do(ctx, http.MethodGet, path+"?"+q.Encode(), nil, &page); err != nil {
			return all, err
		}
		all = append(all, items(&page)...)
		if page.Next == "" || page.Next == after || (limit > 0 && len(all) >= limit) {
			return all, nil
		}
		after = page.Next
	}
}

// Sign posts a partial signature.
func (c *Client) Sign(ctx context.Context, id string, sig attest.Signature) (*SignResponse, error) {
	var v SignResponse
	return &v, c.do(ctx, http.MethodPost, "/v1/requests/"+url.PathEscape(id)+"/signatures", sig, &v)
}

// Cancel cancels a request.
func (c *Client) Cancel(ctx context.Context, id string, in CancelInput) (*RequestView, error) {
	var v RequestView
	return &v, c.do(ctx, http.MethodPost, "/v1/requests/"+url.PathEscape(id)+"/cancel", in, &v)
}

// Attestation fetches the composite envelope of a complete request.
func (c *Client) Attestation(ctx context.Context, id string) ([]byte, error) {
	var raw []byte
	return raw, c.do(ctx, http.MethodGet, "/v1/requests/"+url.PathEscape(id)+"/attestation", nil, &raw)
}

// Bundle fetches the transparency-log bundle of a complete request.
func (c *Client) Bundle(ctx context.Context, id string) ([]byte, error) {
	var raw []byte
	return raw, c.do(ctx, http.MethodGet, "/v1/requests/"+url.PathEscape(id)+"/bundle", nil, &raw)
}

// Checkpoint fetches the latest signed checkpoint (a signed note).
func (c *Client) Checkpoint(ctx context.Context) ([]byte, error) {
	var raw []byte
	return raw, c.do(ctx, http.MethodGet, "/v1/log/checkpoint", nil, &raw)
}

// LogEntries fetches raw entries [start, end) (at most ledgerapi.MaxEntries).
func (c *Client) LogEntries(ctx context.Context, start, end int64) ([][]byte, error) {
	var v LogEntriesView
	return v.Entries, c.do(ctx, http.MethodGet, fmt.Sprintf("/v1/log/entries?start=%d&end=%d", start, end), nil, &v)
}

// InclusionProof fetches the proof that entry index is in the tree of size.
func (c *Client) InclusionProof(ctx context.Context, index, size int64) ([][]byte, error) {
	var v ProofView
	return v.Proof, c.do(ctx, http.MethodGet, fmt.Sprintf("/v1/log/proof/inclusion?index=%d&size=%d", index, size), nil, &v)
}

// ConsistencyProof fetches the proof between tree sizes old and new.
func (c *Client) ConsistencyProof(ctx context.Context, old, new int64) ([][]byte, error) {
	var v ProofView
	return v.Proof, c.do(ctx, http.MethodGet, fmt.Sprintf("/v1/log/proof/consistency?old=%d&new=%d", old, new), nil, &v)
}

// StoredHashes fetches the log's stored hashes [start, end) (tlog numbering).
func (c *Client) StoredHashes(ctx context.Context, start, end int64) ([][]byte, error) {
	var v ProofView
	return v.Proof, c.do(ctx, http.MethodGet, fmt.Sprintf("/v1/log/hashes?start=%d&end=%d", start, end), nil, &v)
}

// TUFFile fetches a file of the coordinator's TUF repository (N.root.json,
// timestamp.json, N.targets.json, ...). Its content is unverified.
func (c *Client) TUFFile(ctx context.Context, name string) ([]byte, error) {
	var raw []byte
	return raw, c.do(ctx, http.MethodGet, "/v1/tuf/"+url.PathEscape(name), nil, &raw)
}

// ProposeChange opens a policy change request.
func (c *Client) ProposeChange(ctx context.Context, in ProposeInput) (*Change, error) {
	var v Change
	return &v, c.do(ctx, http.MethodPost, "/v1/policy/changes", in, &v)
}

// GetChange fetches a policy change request.
func (c *Client) GetChange(ctx context.Context, id string) (*Change, error) {
	var v Change
	return &v, c.do(ctx, http.MethodGet, "/v1/policy/changes/"+url.PathEscape(id), nil, &v)
}

// ListChanges lists the summaries of every policy change request, oldest
// first, following the coordinator's pages.
func (c *Client) ListChanges(ctx context.Context) ([]ChangeSummary, error) {
	return listPages(ctx, c, "/v1/policy/changes", url.Values{}, 0, func(p *listPageView[ChangeSummary]) []ChangeSummary { return p.Changes })
}

// ApproveChange posts an administrator's signature over the proposed
// version's canonical "signed".
func (c *Client) ApproveChange(ctx context.Context, id string, sig attest.Signature) (*ApproveResponse, error) {
	var v ApproveResponse
	return &v, c.do(ctx, http.MethodPost, "/v1/policy/changes/"+url.PathEscape(id)+"/signatures", sig, &v)
}
