// Package localkms runs local-kms (github.com/nsmithuk/local-kms), an
// independent implementation of the AWS KMS API, on loopback for tests of
// quorate's awskms:// backend.
//
// local-kms speaks plain HTTP, and sigstore's AWS provider always reaches an
// awskms://ENDPOINT/KEY URI's endpoint over https://. So [Start] puts a TLS
// front (a reverse proxy with a self-signed loopback certificate) before it;
// the AWS SDK trusts that certificate through AWS_CA_BUNDLE, which is in
// [Server.Env]. The SDK signs requests with the static test credentials in
// Env; local-kms does not check them.
//
// The local-kms binary comes from scripts/localkms.sh install (make deps).
// When it is missing, [Start] skips the test, or fails it under CI (CI=1).
//
// local-kms listens on every interface (it takes only a port); the tests
// reach it through 127.0.0.1 only.
package localkms

import (
	"bufio"
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/quorate-dev/quorate/internal/citest"
	"github.com/quorate-dev/quorate/internal/syncbuf"
)

// The local-kms build the tests use (keep in step with scripts/localkms.sh).
const (
	Module  = "github.com/nsmithuk/local-kms"
	Version = "v0.0.0-20260228092603-2a5e92d09ab6"
	// EnvBin names a directory to look for local-kms in first.
	EnvBin = "QUORATE_LOCALKMS_BIN"
	// Region and Account are the ones local-kms is started with.
	Region  = "eu-west-2"
	Account = "111122223333"
)

var (
	findOnce sync.Once
	binPath  string
	binErr   error
)

// Server is a running local-kms behind its TLS front.
type Server struct {
	// Endpoint is the TLS front's host:port, for awskms://Endpoint/KEY.
	Endpoint string
	// CAFile holds the front's certificate in PEM.
	CAFile string
	// Env is the environment the AWS SDK needs to reach the server (and
	// nothing else: no profile files, no instance metadata).
	Env []string

	front *httptest.Server
	log   *syncbuf.Buffer
}

// started matches local-kms's start line, which names the port it bound.
var started = regexp.MustCompile(`Local KMS started on [^ ]*:([0-9]+)`)

// Start runs local-kms with its data in a temporary directory, and its TLS
// front; both stop when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	findOnce.Do(func() { binPath, binErr = citest.FindGoTool("local-kms", Module, Version, EnvBin) })
	if binErr != nil {
		citest.SkipOrFail(tb, "local-kms", binErr.Error()+"; install with scripts/localkms.sh install")
	}
	dir := tb.TempDir()
	cmd := exec.Command(binPath)
	cmd.Env = []string{
		"PORT=0",
		"KMS_ACCOUNT_ID=" + Account,
		"KMS_REGION=" + Region,
		"KMS_DATA_PATH=" + filepath.Join(dir, "data"),
		"KMS_SEED_PATH=" + filepath.Join(dir, "no-seed.yaml"),
	}
	out, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatalf("starting local-kms: %v", err)
	}
	done := make(chan struct{})
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	log := &syncbuf.Buffer{Max: 64 << 10} // lines for failure messages
	port := make(chan string, 1)
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			fmt.Fprintln(log, sc.Text())
			if m := started.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case port <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, out)
		_ = cmd.Wait()
	}()
	var p string
	select {
	case p = <-port:
	case <-done:
		tb.Fatalf("local-kms exited before it started:\n%s", log.String())
	case <-time.After(60 * time.Second):
		tb.Fatalf("local-kms did not report its port within a minute:\n%s", log.String())
	}
	target, _ := url.Parse("http://127.0.0.1:" + p)
	front := httptest.NewUnstartedServer(httputil.NewSingleHostReverseProxy(target))
	front.StartTLS()
	tb.Cleanup(front.Close)
	ca := filepath.Join(dir, "front.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: front.Certificate().Raw}), 0o644); err != nil {
		tb.Fatal(err)
	}
	return &Server{
		Endpoint: strings.TrimPrefix(front.URL, "https://"),
		CAFile:   ca,
		Env: []string{
			"AWS_CA_BUNDLE=" + ca,
			"AWS_REGION=" + Region,
			"AWS_ACCESS_KEY_ID=AKIAQUORATETESTONLY0",
			"AWS_SECRET_ACCESS_KEY=quorate-test-only-not-a-secret",
			"AWS_SESSION_TOKEN=",
			"AWS_PROFILE=",
			"AWS_CONFIG_FILE=" + filepath.Join(dir, "no-aws-config"),
			"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "no-aws-credentials"),
			"AWS_EC2_METADATA_DISABLED=true",
			"AWS_ENDPOINT_URL=",
			"AWS_ENDPOINT_URL_KMS=",
		},
		front: front,
		log:   log,
	}
}

// SetEnv sets [Server.Env] in the test process for the test's duration (the
// AWS SDK reads the process environment), so the test must not be parallel.
func (s *Server) SetEnv(t *testing.T) {
	t.Helper()
	for _, kv := range s.Env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// Log returns what local-kms has printed so far.
func (s *Server) Log() string { return s.log.String() }

// URI is the awskms:// key URI of keyID (a key ID, alias/NAME or ARN)
// through the TLS front.
func (s *Server) URI(keyID string) string { return "awskms://" + s.Endpoint + "/" + keyID }

// Client is an AWS SDK KMS client for the server, for the operations
// quorate's backend does not do (creating keys).
func (s *Server) Client(tb testing.TB) *kms.Client {
	tb.Helper()
	ca, err := os.ReadFile(s.CAFile)
	if err != nil {
		tb.Fatal(err)
	}
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion(Region),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIAQUORATETESTONLY0", "quorate-test-only-not-a-secret", "")),
		config.WithCustomCABundle(bytes.NewReader(ca)),
	)
	if err != nil {
		tb.Fatalf("AWS SDK config: %v", err)
	}
	return kms.NewFromConfig(cfg, func(o *kms.Options) { o.BaseEndpoint = aws.String(s.front.URL) })
}

// CreateKey creates a SIGN_VERIFY key of spec and returns its key ID.
func (s *Server) CreateKey(tb testing.TB, spec types.KeySpec) string {
	tb.Helper()
	out, err := s.Client(tb).CreateKey(context.Background(), &kms.CreateKeyInput{
		KeySpec:     spec,
		KeyUsage:    types.KeyUsageTypeSignVerify,
		Description: aws.String("quorate test key " + string(spec)),
	})
	if err != nil {
		tb.Fatalf("creating a %s key in local-kms: %v\n%s", spec, err, s.Log())
	}
	return aws.ToString(out.KeyMetadata.KeyId)
}

// CreateAlias names keyID alias/name.
func (s *Server) CreateAlias(tb testing.TB, name, keyID string) {
	tb.Helper()
	if _, err := s.Client(tb).CreateAlias(context.Background(), &kms.CreateAliasInput{
		AliasName: aws.String("alias/" + name), TargetKeyId: aws.String(keyID),
	}); err != nil {
		tb.Fatalf("creating alias/%s: %v", name, err)
	}
}
