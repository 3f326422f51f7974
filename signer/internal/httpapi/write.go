package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"sync"

	"go.uber.org/zap"

	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/signer/client"
)

// status is the HTTP status of each kind.
var status = map[Kind]int{
	KindInvalid: http.StatusBadRequest, KindUnauthorized: http.StatusForbidden, KindBadSignature: http.StatusForbidden,
	KindNotFound: http.StatusNotFound, KindDuplicate: http.StatusConflict, KindNotPending: http.StatusConflict,
	KindStalePolicy: http.StatusConflict, KindTooLarge: http.StatusRequestEntityTooLarge,
	KindUnavailable: http.StatusServiceUnavailable, KindInternal: http.StatusInternalServerError,
	KindPolicyExpired: http.StatusServiceUnavailable, KindProvenance: http.StatusUnprocessableEntity,
}

// Fail answers err: its kind's status and message, except that an
// internal error's message is logged, not sent (the client sees the
// request ID to quote). A nil log discards the messages.
func Fail(log *zap.Logger, w http.ResponseWriter, r *http.Request, err error) {
	if log == nil {
		log = zap.NewNop()
	}
	kind := KindOf(err)
	msg := err.Error()
	if kind == KindInternal {
		log.Error("internal error", zap.String("rid", RequestID(r)), zap.String("path", r.URL.Path), zap.Error(err))
		msg = "internal error (request " + RequestID(r) + ")"
	} else {
		log.Info("request refused", zap.String("rid", RequestID(r)), zap.String("path", r.URL.Path), zap.String("kind", string(kind)), zap.String("error", msg))
	}
	if kind == KindUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	body := client.ErrorBody{Error: msg, Code: string(kind)}
	if kind != KindInternal {
		body.Reason = policy.CodeOf(err)
	}
	WriteJSON(w, status[kind], body)
}

// WriteError answers an error body (client.ErrorBody).
func WriteError(w http.ResponseWriter, status int, code, msg string) {
	WriteJSON(w, status, client.ErrorBody{Error: msg, Code: code})
}

// WriteJSON answers v as JSON, compact (indenting was 5% of a busy
// coordinator's CPU; pipe to jq to read an answer). The encoder and its
// buffers are pooled: a coordinator answers every signature with one.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	e := encoders.Get().(*jsonEncoder)
	defer e.put()
	if err := e.enc.Encode(v); err != nil {
		e.buf.Reset()
		status = http.StatusInternalServerError
		_ = e.enc.Encode(client.ErrorBody{Error: "internal error: encoding the response", Code: string(KindInternal)})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(e.buf.Bytes())
}

type jsonEncoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

var encoders = sync.Pool{New: func() any {
	e := &jsonEncoder{}
	e.enc = json.NewEncoder(&e.buf)
	return e
}}

// put returns e to the pool, unless a large answer grew its buffer.
func (e *jsonEncoder) put() {
	if e.buf.Cap() > 64<<10 {
		return
	}
	e.buf.Reset()
	encoders.Put(e)
}

type ridKey struct{}

// WithRequestID returns r carrying request ID rid.
func WithRequestID(r *http.Request, rid string) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), ridKey{}, rid))
}

// RequestID is the ID WithRequestID gave r ("" if none).
func RequestID(r *http.Request) string {
	s, _ := r.Context().Value(ridKey{}).(string)
	return s
}

// Wrappers are the coordinator API's middleware and limits, for the
// routes a sub-package registers (signer/ledgerapi, signer/policychange).
type Wrappers struct {
	// Read checks the read token (when the coordinator has one).
	Read func(http.HandlerFunc) http.HandlerFunc
	// Body caps a request body at limit bytes and holds it against the
	// in-flight budget.
	Body   func(limit int64, h http.HandlerFunc) http.HandlerFunc
	Logger *zap.Logger
	// Body caps of a signature and of a proposal; byte cap of a listing page.
	MaxSignatureBody, MaxProposalBody int64
	MaxListBytes                      int
}
