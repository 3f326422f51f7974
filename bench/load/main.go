// Command load drives quorate coordinators over HTTP with N concurrent
// signers and reports accepted partial signatures per second and latency
// percentiles, next to the raw cost of verifying one signature measured in
// the same run, so the ratio to the crypto bound is visible.
//
// It builds its own trust directory (a role of K file keys, threshold K, so
// every request takes K partial signatures and then emits one composite),
// starts the coordinator(s) as child processes of the quorate binary, opens
// the requests and pre-signs every partial signature before the timed phase,
// so the clients' signing does not compete for the CPU being measured.
//
//	go run ./bench/load --quorate bin/quorate --clients 64 --requests 200
//	go run ./bench/load --quorate bin/quorate --replicas 2 --store postgres://postgres@127.0.0.1/test
package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/hsm/filekey"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
	"github.com/quorate-dev/quorate/signer/client"
)

type config struct {
	spread   string // how a request's signatures go to the replicas: alternate, random, request
	order    string // in which order the signatures are sent: ranks, staggered (see order)
	open     string // when the requests are opened: setup, timed
	quorate  string
	clients  int
	requests int
	keys     int
	replicas int
	store    string
	dbRTT    time.Duration // round trip added between coordinators and the database
	dir      string
	jsonOut  bool
	extra    string
	hold     time.Duration
	webhooks bool   // deliver every event to an endpoint in this process
	hookCfg  string // the webhook configuration file, with webhooks
	withLog  bool
	profile  string        // directory for the replicas' CPU profiles ("": none)
	profSecs time.Duration // length of each profile
	trace    bool          // an execution trace instead of a CPU profile
	debug    []string      // the replicas' --debug-addr, with profile
}

func main() {
	var c config
	flag.StringVar(&c.quorate, "quorate", "bin/quorate", "quorate binary")
	flag.IntVar(&c.clients, "clients", 64, "concurrent clients")
	flag.IntVar(&c.requests, "requests", 200, "signing requests")
	flag.IntVar(&c.keys, "keys", 16, "keys in the signing role (= signatures per request)")
	flag.IntVar(&c.replicas, "replicas", 1, "coordinator replicas to start (more than 1 needs --store)")
	flag.StringVar(&c.store, "store", "", "store URL shared by the replicas (default: SQLite in a temp dir)")
	flag.DurationVar(&c.dbRTT, "db-latency", 0, "round trip to add between the coordinators and the PostgreSQL --store, through a delaying proxy, as when they run on other machines (e.g. 500us)")
	flag.StringVar(&c.dir, "dir", "", "work directory (default: a temp dir, removed after)")
	flag.BoolVar(&c.jsonOut, "json", false, "print the result as JSON")
	flag.BoolVar(&c.withLog, "log", true, "run the coordinator with a transparency log (serve --log-key)")
	flag.StringVar(&c.spread, "spread", "alternate", "with replicas, how each request's signatures go to them: alternate (each to the other replica than the one before: the worst case for their caches), random (as a round-robin load balancer in front of many signers would) or request (all of a request's signatures to the replica its ID hashes to, whichever opened it, as a balancer hashing the ID in the path would: docs/operations.md, Replicas)")
	flag.StringVar(&c.order, "order", "ranks", "the order signatures are sent in: ranks (every request's first, then every request's second, ...: all requests complete in the last signatures of the run) or staggered (requests started a few signatures apart, about as many open at once as clients: completions spread over the run, as a coordinator sees them in steady state)")
	flag.StringVar(&c.open, "open", "setup", "when the requests are opened: setup (all before the timed phase) or timed (each by the clients in the timed phase, in --order as its signature number 0, and its other signatures sent once it is open: openings and signatures share batches, as in steady state; with --order ranks every opening comes first, so use staggered)")
	flag.DurationVar(&c.hold, "hold", 0, "keep the coordinators running this long after the load (e.g. to let webhook deliveries drain)")
	flag.BoolVar(&c.webhooks, "webhooks", false, "deliver every logged event as a webhook to an endpoint in this process (serve --webhooks, checkpoints every second), and report deliveries/s, the latency from event to receipt and how long the deliveries took to drain after the load (at most a minute); needs --log")
	flag.StringVar(&c.profile, "cpuprofile", "", "write each coordinator's CPU profile of the timed phase to `DIR`/replicaN.pprof (serve --debug-addr)")
	flag.DurationVar(&c.profSecs, "profile-time", 5*time.Second, "length of each CPU profile, from the start of the timed phase")
	flag.BoolVar(&c.trace, "trace", false, "with --cpuprofile, write each coordinator's execution trace instead (`DIR`/replicaN.trace; read with go tool trace): where its goroutines ran, waited for a CPU or blocked")
	flag.StringVar(&c.extra, "serve-args", "", "extra arguments for 'quorate serve' (space-separated), e.g. --debug-addr 127.0.0.1:6060")
	flag.Parse()
	res, err := run(context.Background(), c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
	if c.jsonOut {
		_ = json.NewEncoder(os.Stdout).Encode(res)
		return
	}
	if res.DBLatencyMs > 0 {
		fmt.Printf("database round trip +%.2f ms (--db-latency)\n", res.DBLatencyMs)
	}
	if res.Order != "ranks" {
		fmt.Printf("signatures sent %s (--order)\n", res.Order)
	}
	if res.Open == "timed" {
		fmt.Printf("requests opened in the timed phase: %d, latency p50 %.2f ms  p99 %.2f ms (--open timed)\n", res.Opened, res.OpenP50ms, res.OpenP99ms)
	}
	if res.Spread != "" {
		fmt.Printf("a request's signatures spread over the replicas: %s (--spread)\n", res.Spread)
	}
	fmt.Printf("log=%v replicas=%d store=%s clients=%d signatures=%d accepted=%d rejected=%d composites=%d\n",
		c.withLog, c.replicas, res.Store, c.clients, res.Attempted, res.Accepted, res.Rejected, res.Composites)
	fmt.Printf("throughput %.0f accepted partial signatures/s over %.2fs\n", res.PerSecond, res.Seconds)
	fmt.Printf("latency p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms\n", res.P50ms, res.P90ms, res.P99ms, res.MaxMs)
	fmt.Printf("raw ECDSA P-256 verify %.1f µs/op (one core): crypto bound %.0f/s per core; throughput is %.1f%% of one core's bound\n",
		res.RawVerifyUs, 1e6/res.RawVerifyUs, 100*res.CryptoShare)
	fmt.Printf("time to threshold (last ack -> composite fetchable) p50 %.2f ms  p99 %.2f ms  max %.2f ms\n", res.ThresholdP50ms, res.ThresholdP99ms, res.ThresholdMaxMs)
	fmt.Printf("coordinator RSS peak %.1f MiB, mid-run %.1f MiB (anonymous %.1f), end %.1f MiB (anonymous %.1f); CPU share of %d cores: coordinators %.0f%%, load generator %.0f%%\n",
		res.PeakRSSMiB, res.MidRSSMiB, res.MidAnonMiB, res.EndRSSMiB, res.EndAnonMiB, res.Cores, 100*res.CoordinatorCPU, 100*res.LoadGeneratorCPU)
	if res.DatabaseCPU > 0 {
		fmt.Printf("PostgreSQL server CPU share %.0f%%\n", 100*res.DatabaseCPU)
	}
	fmt.Printf("machine idle %.0f%% of %d cores\n", 100*res.MachineIdle, res.Cores)
	if res.Webhooks != nil {
		fmt.Println(res.Webhooks.describe())
	}
	if res.Batches == 0 {
		fmt.Println("store batches: none reported (this quorate has no quorate_store_batch_writes metric)")
		return
	}
	fmt.Printf("store batches %d, %.1f writes/batch; log lock held %.2f ms/batch (p99 %.2f ms), busy %.0f%% of the timed phase (summed over replicas)\n",
		res.Batches, res.WritesPerBatch, res.LockMsPerBatch, res.LockP99Ms, 100*res.LockBusy)
}

// replicaFor is the replica (of n) that signature k of request r, whose ID
// is id, goes to under --spread: alternate sends each signature to the
// replica after the one before (the requests are opened in turn: request r
// on replica r mod n), random anywhere, request by a hash of the ID.
func replicaFor(spread, id string, r, k, n int) int {
	switch spread {
	case "random":
		return rand.IntN(n)
	case "request":
		h := fnv.New32a()
		_, _ = h.Write([]byte(id))
		return int(h.Sum32() % uint32(n))
	}
	return (r + k) % n
}

// spreadOf is c's --spread when there are replicas to spread over.
func spreadOf(c *config) string {
	if c.replicas < 2 {
		return ""
	}
	return c.spread
}

// Result is what a run measured.
type Result struct {
	Store       string  `json:"store"`
	DBLatencyMs float64 `json:"dbLatencyMs,omitempty"` // --db-latency
	Order       string  `json:"order"`                 // --order
	Spread      string  `json:"spread,omitempty"`      // --spread, with replicas
	// Open is --open. With timed, Opened requests were opened in the timed
	// phase (each with the requester's signature, not counted in Accepted
	// or PerSecond), OpenP50ms and OpenP99ms their latency.
	Open        string  `json:"open"`
	Opened      int64   `json:"opened,omitempty"`
	OpenP50ms   float64 `json:"openP50ms,omitempty"`
	OpenP99ms   float64 `json:"openP99ms,omitempty"`
	Attempted   int     `json:"attempted"` // signatures sent, the requester's not counted
	Accepted    int64   `json:"accepted"`
	Rejected    int64   `json:"rejected"`
	Composites  int64   `json:"composites"`
	Seconds     float64 `json:"seconds"`
	PerSecond   float64 `json:"perSecond"`
	P50ms       float64 `json:"p50ms"`
	P90ms       float64 `json:"p90ms"`
	P99ms       float64 `json:"p99ms"`
	MaxMs       float64 `json:"maxMs"`
	RawVerifyUs float64 `json:"rawVerifyUs"`
	// CryptoShare is PerSecond as a share of one core's crypto bound
	// (1/RawVerifyUs), the figure that holds on a noisy machine.
	CryptoShare float64 `json:"cryptoShare"`
	// Time to threshold: from the acknowledgement of the signature that
	// completed a request to its composite being fetchable (from another
	// replica when there are several).
	ThresholdP50ms float64 `json:"thresholdP50ms"`
	ThresholdP99ms float64 `json:"thresholdP99ms"`
	ThresholdMaxMs float64 `json:"thresholdMaxMs"`
	// Coordinator memory, summed over the replicas, from /proc: the peak
	// resident set (VmHWM), and the resident set halfway through the timed
	// phase and at its end (growth between them tracks completed requests).
	PeakRSSMiB float64 `json:"peakRssMiB"`
	MidRSSMiB  float64 `json:"midRssMiB"`
	EndRSSMiB  float64 `json:"endRssMiB"`
	// The anonymous part of the resident set (RssAnon: heap, stacks)
	// halfway and at the end; the rest is mostly the binary's mapped
	// pages, which differ from build to build by 10 MiB or more.
	MidAnonMiB float64 `json:"midAnonMiB"`
	EndAnonMiB float64 `json:"endAnonMiB"`
	// CPU used during the timed phase, as a share of the whole machine
	// (all cores): the coordinators' and the load generator's own.
	Cores            int     `json:"cores"`
	CoordinatorCPU   float64 `json:"coordinatorCpu"`
	LoadGeneratorCPU float64 `json:"loadGeneratorCpu"`
	// DatabaseCPU is the CPU of this machine's PostgreSQL server (every
	// process named postgres) in the same terms, with --store postgres on
	// this machine (otherwise 0); MachineIdle is the share of the whole
	// machine left idle (from /proc/stat). With everything on one machine,
	// a MachineIdle near 0 means the setup is CPU-bound.
	DatabaseCPU float64 `json:"databaseCpu"`
	MachineIdle float64 `json:"machineIdle"`
	// The stores' group commit during the timed phase, summed over the
	// replicas' /metrics (all zero with a quorate that does not expose
	// them): committed batches, mean writes per batch, mean and p99 (from
	// the histogram's buckets) log lock hold per batch, and LockBusy, the
	// holds' sum over the timed phase's wall time — the utilization of the
	// section serial across replicas (near 1: the log lock is the ceiling).
	Batches        int64   `json:"batches"`
	WritesPerBatch float64 `json:"writesPerBatch"`
	LockMsPerBatch float64 `json:"lockMsPerBatch"`
	LockP99Ms      float64 `json:"lockP99Ms"`
	LockBusy       float64 `json:"lockBusy"`
	// Webhooks: what the endpoint of --webhooks received (nil without).
	Webhooks *webhookResult `json:"webhooks,omitempty"`
}

type job struct {
	url  string
	id   string
	sig  attest.Signature
	r    int               // the request's number
	open *client.OpenInput // set: open the request (--open timed)
}

func run(ctx context.Context, c config) (*Result, error) {
	if c.replicas > 1 && c.store == "" {
		return nil, errors.New("--replicas > 1 needs a shared --store")
	}
	if c.spread != "alternate" && c.spread != "random" && c.spread != "request" {
		return nil, fmt.Errorf("--spread %q: want alternate, random or request", c.spread)
	}
	if c.order != "ranks" && c.order != "staggered" {
		return nil, fmt.Errorf("--order %q: want ranks or staggered", c.order)
	}
	if c.open != "setup" && c.open != "timed" {
		return nil, fmt.Errorf("--open %q: want setup or timed", c.open)
	}
	dir := c.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "quorate-load-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	if c.dbRTT > 0 {
		if c.store == "" {
			return nil, errors.New("--db-latency needs a PostgreSQL --store")
		}
		target, via, err := proxied(c.store)
		if err != nil {
			return nil, err
		}
		p, err := startDelayProxy(target, c.dbRTT/2)
		if err != nil {
			return nil, err
		}
		defer p.Close()
		c.store = via(p.Addr())
	}
	var sink *webhookSink
	if c.webhooks {
		if !c.withLog {
			return nil, errors.New("--webhooks needs --log: deliveries carry inclusion proofs")
		}
		s, cfg, err := startWebhookSink(dir)
		if err != nil {
			return nil, fmt.Errorf("starting the webhook endpoint: %w", err)
		}
		defer s.close()
		sink, c.hookCfg = s, cfg
	}
	signers, trustDir, err := setup(ctx, dir, c.keys, c.withLog)
	if err != nil {
		return nil, fmt.Errorf("setting up the policy: %w", err)
	}
	urls, pids, stop, err := startReplicas(ctx, &c, dir, trustDir)
	defer stop()
	defer time.Sleep(c.hold)
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c.clients * 2, MaxConnsPerHost: 0}, Timeout: 30 * time.Second}
	trust, err := policy.Load(trustDir, policy.LoadOptions{Now: time.Now()})
	if err != nil {
		return nil, err
	}

	// Open the requests (the requester is key 0) and pre-sign the rest.
	perReq := make([][]job, c.requests)
	opens := make([]chan struct{}, c.requests) // closed once request r is open (or failed to)
	openFailed := make([]atomic.Bool, c.requests)
	for r := 0; r < c.requests; r++ {
		url := urls[r%len(urls)]
		cl := &client.Client{BaseURL: url, HTTP: hc}
		st, err := statement(trust, r)
		if err != nil {
			return nil, err
		}
		pae := dsse.PAE(attest.PayloadType, st)
		sig0, err := signers[0].Sign(ctx, pae)
		if err != nil {
			return nil, err
		}
		in := client.OpenInput{PayloadType: attest.PayloadType, Payload: base64.StdEncoding.EncodeToString(st),
			Signature: attest.Signature{KeyID: signers[0].Public().ID(), Sig: base64.StdEncoding.EncodeToString(sig0)}}
		opens[r] = make(chan struct{})
		var id string
		if c.open == "timed" {
			// The request's ID is its statement's (the coordinator's).
			_, pred, err := attest.ParseStatement(st, attest.Limits{})
			if err != nil {
				return nil, err
			}
			id = pred.RequestID
			perReq[r] = append(perReq[r], job{url: url, id: id, r: r, open: &in})
		} else {
			v, err := cl.Open(ctx, in)
			if err != nil {
				return nil, fmt.Errorf("opening request %d: %w", r, err)
			}
			id = v.ID
			close(opens[r])
		}
		for k := 1; k < len(signers); k++ {
			raw, err := signers[k].Sign(ctx, pae)
			if err != nil {
				return nil, err
			}
			// Spread each request's signatures over the replicas.
			to := replicaFor(c.spread, id, r, k, len(urls))
			perReq[r] = append(perReq[r], job{url: urls[to], id: id, r: r, sig: attest.Signature{KeyID: signers[k].Public().ID(), Sig: base64.StdEncoding.EncodeToString(raw)}})
		}
	}
	jobs := order(perReq, c.order, c.clients)

	var next, accepted, rejected, composites, opened atomic.Int64
	lat := make([][]time.Duration, c.clients)
	openLat := make([][]time.Duration, c.clients)
	var (
		wg, fetches sync.WaitGroup
		thrMu       sync.Mutex
		thr         []time.Duration
		midRSS      float64
		midAnon     float64
		midOnce     sync.Once
	)
	profiled := profile(ctx, c)
	batches0, err := scrapeBatches(ctx, hc, urls)
	if err != nil {
		return nil, err
	}
	cpu0, self0 := procCPU(pids), selfCPU()
	db0, idle0 := databaseCPU(c.store), machineIdle()
	start := time.Now()
	for w := 0; w < c.clients; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(jobs) {
					return
				}
				j := jobs[i]
				if j.open != nil {
					cl := &client.Client{BaseURL: j.url, HTTP: hc}
					t0 := time.Now()
					if _, err := cl.Open(ctx, *j.open); err != nil {
						openFailed[j.r].Store(true)
						if rejected.Add(1) == 1 {
							fmt.Fprintf(os.Stderr, "load: first rejection: opening request %d: %v\n", j.r, err)
						}
					} else {
						opened.Add(1)
						openLat[w] = append(openLat[w], time.Since(t0))
					}
					close(opens[j.r])
					continue
				}
				<-opens[j.r]
				if openFailed[j.r].Load() {
					rejected.Add(1)
					continue
				}
				body, _ := json.Marshal(j.sig)
				t0 := time.Now()
				resp, err := hc.Post(j.url+"/v1/requests/"+j.id+"/signatures", "application/json", bytes.NewReader(body))
				if err != nil {
					if rejected.Add(1) == 1 {
						fmt.Fprintf(os.Stderr, "load: first rejection: %v\n", err)
					}
					continue
				}
				var sr client.SignResponse
				derr := json.NewDecoder(resp.Body).Decode(&sr)
				resp.Body.Close()
				lat[w] = append(lat[w], time.Since(t0))
				if i == len(jobs)/2 {
					midOnce.Do(func() { midRSS, midAnon = rssMiB(pids, "VmRSS"), rssMiB(pids, "RssAnon") })
				}
				if resp.StatusCode == http.StatusCreated && derr == nil {
					accepted.Add(1)
					if sr.Completed {
						composites.Add(1)
						acked := time.Now()
						fetches.Add(1)
						go func() {
							defer fetches.Done()
							if d, ok := fetchable(ctx, hc, urls[(i+1)%len(urls)], j.id, acked); ok {
								thrMu.Lock()
								thr = append(thr, d)
								thrMu.Unlock()
							}
						}()
					}
				} else {
					if rejected.Add(1) == 1 {
						fmt.Fprintf(os.Stderr, "load: first rejection: %s: %v %+v\n", resp.Status, derr, sr)
					}
				}
			}
		}(w)
	}
	wg.Wait()
	end := time.Now()
	elapsed := end.Sub(start)
	inLoad := 0
	if sink != nil {
		inLoad = sink.Delivered()
	}
	batches1, err := scrapeBatches(ctx, hc, urls)
	if err != nil {
		return nil, err
	}
	batches := batches1.minus(batches0)
	fetches.Wait()
	if err := profiled(); err != nil {
		return nil, err
	}
	cores := runtime.NumCPU()
	coordCPU := (procCPU(pids) - cpu0) / elapsed.Seconds() / float64(cores)
	selfShare := (selfCPU() - self0) / elapsed.Seconds() / float64(cores)
	dbShare := databaseCPU(c.store).since(db0) / elapsed.Seconds() / float64(cores)
	idleShare := (machineIdle() - idle0) / elapsed.Seconds() / float64(cores)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	pct := percentiles(all)
	tpct := percentiles(thr)
	var allOpens []time.Duration
	for _, l := range openLat {
		allOpens = append(allOpens, l...)
	}
	opct := percentiles(allOpens)
	attempted := len(jobs)
	if c.open == "timed" {
		attempted -= c.requests
	}
	var hooks *webhookResult
	if sink != nil {
		// Every event: each request's opening, each accepted signature
		// (the requester's with the opening), each composite.
		want := int(accepted.Load() + composites.Load())
		if c.open == "timed" {
			want += int(opened.Load()) * 2
		} else {
			want += c.requests * 2
		}
		sink.Drain(want, 3*time.Second, time.Minute)
		hooks = sink.result(start, end, inLoad, want)
	}
	raw := rawVerify()
	storeName := "sqlite"
	if c.store != "" {
		storeName = strings.SplitN(c.store, ":", 2)[0]
	}
	return &Result{Store: storeName, DBLatencyMs: float64(c.dbRTT.Microseconds()) / 1000, Order: c.order, Spread: spreadOf(&c), Open: c.open, Opened: opened.Load(), OpenP50ms: opct(0.50), OpenP99ms: opct(0.99), Attempted: attempted, Accepted: accepted.Load(), Rejected: rejected.Load(), Composites: composites.Load(),
		Seconds: elapsed.Seconds(), PerSecond: float64(accepted.Load()) / elapsed.Seconds(),
		P50ms: pct(0.50), P90ms: pct(0.90), P99ms: pct(0.99), MaxMs: pct(1), RawVerifyUs: raw, CryptoShare: float64(accepted.Load()) / elapsed.Seconds() / (1e6 / raw),
		ThresholdP50ms: tpct(0.50), ThresholdP99ms: tpct(0.99), ThresholdMaxMs: tpct(1),
		PeakRSSMiB: rssMiB(pids, "VmHWM"), MidRSSMiB: midRSS, EndRSSMiB: rssMiB(pids, "VmRSS"),
		MidAnonMiB: midAnon, EndAnonMiB: rssMiB(pids, "RssAnon"),
		Cores: cores, CoordinatorCPU: coordCPU, LoadGeneratorCPU: selfShare,
		DatabaseCPU: dbShare, MachineIdle: idleShare,
		Batches: int64(batches.count), WritesPerBatch: ratio(batches.writes, batches.count), LockMsPerBatch: 1000 * ratio(batches.lock, batches.count),
		LockP99Ms: 1000 * batches.lockQuantile(0.99), LockBusy: batches.lock / elapsed.Seconds(), Webhooks: hooks}, nil
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// batchStats sum the replicas' store batch histograms
// (quorate_store_batch_writes, quorate_store_log_lock_seconds).
type batchStats struct {
	count, writes, lock float64
	lockLE              map[float64]float64 // cumulative batches by bucket upper bound
}

// scrapeBatches reads the batch histograms from every replica's /metrics.
func scrapeBatches(ctx context.Context, hc *http.Client, urls []string) (batchStats, error) {
	s := batchStats{lockLE: map[float64]float64{}}
	for _, u := range urls {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u+"/metrics", nil)
		if err != nil {
			return s, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return s, fmt.Errorf("scraping %s/metrics: %w", u, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return s, fmt.Errorf("scraping %s/metrics: %w", u, err)
		}
		if resp.StatusCode != http.StatusOK {
			return s, fmt.Errorf("scraping %s/metrics: %s", u, resp.Status)
		}
		for _, line := range strings.Split(string(body), "\n") {
			name, value, ok := strings.Cut(line, " ")
			if !ok || strings.HasPrefix(line, "#") {
				continue
			}
			v, err := strconv.ParseFloat(value, 64)
			if err != nil {
				continue
			}
			switch name {
			case "quorate_store_batch_writes_count":
				s.count += v
			case "quorate_store_batch_writes_sum":
				s.writes += v
			case "quorate_store_log_lock_seconds_sum":
				s.lock += v
			default:
				if le, ok := strings.CutPrefix(name, `quorate_store_log_lock_seconds_bucket{le="`); ok {
					if b, err := strconv.ParseFloat(strings.TrimSuffix(le, `"}`), 64); err == nil {
						s.lockLE[b] += v
					}
				}
			}
		}
	}
	return s, nil
}

// minus is what happened between o and s.
func (s batchStats) minus(o batchStats) batchStats {
	d := batchStats{count: s.count - o.count, writes: s.writes - o.writes, lock: s.lock - o.lock, lockLE: map[float64]float64{}}
	for le, n := range s.lockLE {
		d.lockLE[le] = n - o.lockLE[le]
	}
	return d
}

// lockQuantile estimates the q-quantile of the lock holds in seconds, as
// Prometheus' histogram_quantile does: linearly within the bucket it falls
// in (the largest finite bound if it falls in +Inf).
func (s batchStats) lockQuantile(q float64) float64 {
	les := make([]float64, 0, len(s.lockLE))
	for le := range s.lockLE {
		les = append(les, le)
	}
	sort.Float64s(les)
	if len(les) == 0 || s.lockLE[les[len(les)-1]] == 0 {
		return 0
	}
	rank := q * s.lockLE[les[len(les)-1]]
	lower, below := 0.0, 0.0
	for _, le := range les {
		n := s.lockLE[le]
		if n >= rank {
			if math.IsInf(le, 1) {
				return lower
			}
			return lower + (le-lower)*(rank-below)/(n-below)
		}
		lower, below = le, n
	}
	return lower
}

// profile starts fetching a CPU profile of c.profSecs from every
// replica's debug address into c.profile; the function it returns waits for
// them.
func profile(ctx context.Context, c config) func() error {
	if c.profile == "" {
		return func() error { return nil }
	}
	errs := make(chan error, len(c.debug))
	for i, addr := range c.debug {
		go func() {
			errs <- func() error {
				kind, file := "profile", "replica%d.pprof"
				if c.trace {
					kind, file = "trace", "replica%d.trace"
				}
				url := fmt.Sprintf("http://%s/debug/pprof/%s?seconds=%d", addr, kind, int(c.profSecs.Seconds()))
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				if err != nil {
					return err
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return fmt.Errorf("profiling replica %d: %w", i, err)
				}
				defer resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					return fmt.Errorf("profiling replica %d: %s", i, resp.Status)
				}
				f, err := os.Create(filepath.Join(c.profile, fmt.Sprintf(file, i)))
				if err != nil {
					return err
				}
				if _, err := io.Copy(f, resp.Body); err != nil {
					f.Close()
					return err
				}
				return f.Close()
			}()
		}()
	}
	return func() error {
		var first error
		for range c.debug {
			if err := <-errs; err != nil && first == nil {
				first = err
			}
		}
		return first
	}
}

// order returns the jobs of perReq (request r's signatures, in the order
// they are to be sent) in the order the clients take them:
//
//   - ranks: every request's first signature, then every request's second,
//     and so on: concurrent clients sign different requests, and every
//     request completes in the last len(perReq) signatures of the run.
//   - staggered: request r's signature k at step r + k*stride, where stride
//     is clients divided by the signatures per request (at least 1): about
//     as many requests are open at once as there are clients, and between
//     a ramp at each end each stretch of signatures mixes every rank, one
//     in len(perReq[r]) completing its request.
func order(perReq [][]job, how string, clients int) []job {
	var jobs []job
	switch how {
	case "staggered":
		type keyed struct {
			step, k int
			j       job
		}
		var all []keyed
		for r, js := range perReq {
			stride := max(1, clients/max(1, len(js)))
			for k, j := range js {
				all = append(all, keyed{r + k*stride, k, j})
			}
		}
		sort.SliceStable(all, func(a, b int) bool {
			if all[a].step != all[b].step {
				return all[a].step < all[b].step
			}
			return all[a].k > all[b].k // the older request first
		})
		for _, x := range all {
			jobs = append(jobs, x.j)
		}
	default:
		for k := 0; len(perReq) > 0 && k < len(perReq[0]); k++ {
			for r := range perReq {
				jobs = append(jobs, perReq[r][k])
			}
		}
	}
	return jobs
}

// freeAddr returns a free loopback address.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// percentiles sorts d and returns its p-th percentile in milliseconds.
func percentiles(d []time.Duration) func(p float64) float64 {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return func(p float64) float64 {
		if len(d) == 0 {
			return 0
		}
		return float64(d[min(len(d)-1, int(p*float64(len(d))))].Microseconds()) / 1000
	}
}

// fetchable polls for the composite of request id until it is served, and
// returns the time since acked. It gives up after 30 s.
func fetchable(ctx context.Context, hc *http.Client, url, id string, acked time.Time) (time.Duration, bool) {
	cl := &client.Client{BaseURL: url, HTTP: hc}
	for time.Since(acked) < 30*time.Second {
		if _, err := cl.Attestation(ctx, id); err == nil {
			return time.Since(acked), true
		}
		time.Sleep(time.Millisecond)
	}
	return 0, false
}

// rssMiB sums the field (VmRSS, VmHWM) of /proc/PID/status over pids.
func rssMiB(pids []int, field string) float64 {
	var kib float64
	for _, pid := range pids {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, field+":"); ok {
				n, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
				kib += n
			}
		}
	}
	return kib / 1024
}

// procCPU sums user+system CPU seconds of pids from /proc/PID/stat.
func procCPU(pids []int) float64 {
	const ticks = 100 // USER_HZ on Linux
	var t float64
	for _, pid := range pids {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// Fields after the command name (which may hold spaces) in parentheses.
		s := string(data)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 12 {
			u, _ := strconv.ParseFloat(f[11], 64)
			k, _ := strconv.ParseFloat(f[12], 64)
			t += (u + k) / ticks
		}
	}
	return t
}

// processCPU is CPU seconds by process ID.
type processCPU map[int]float64

// databaseCPU reads the CPU seconds of this machine's PostgreSQL server
// processes when store is a postgres URL (nil otherwise).
func databaseCPU(store string) processCPU {
	if !strings.HasPrefix(store, "postgres") {
		return nil
	}
	dirs, _ := os.ReadDir("/proc")
	out := processCPU{}
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil && strings.TrimSpace(string(comm)) == "postgres" {
			out[pid] = procCPU([]int{pid})
		}
	}
	return out
}

// since sums the CPU each process used after base (all of it for a
// process started since: a connection's backend).
func (now processCPU) since(base processCPU) float64 {
	var t float64
	for pid, s := range now {
		t += s - base[pid]
	}
	return t
}

// machineIdle is the machine's idle CPU seconds since boot, summed over
// its cores (/proc/stat; 0 if unreadable).
func machineIdle() float64 {
	const ticks = 100 // USER_HZ on Linux
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0
	}
	idle, _ := strconv.ParseFloat(f[4], 64)
	return idle / ticks
}

// selfCPU is this process's user+system CPU seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// rawVerify measures one ECDSA verification (with its SHA-256) in this process.
func rawVerify() float64 {
	priv, _ := filekey.NewPrivateKey(hsm.ECDSAP256)
	msg := bytes.Repeat([]byte("x"), 600)
	d := sha256.Sum256(msg)
	sig, _ := ecdsa.SignASN1(nil, priv.(*ecdsa.PrivateKey), d[:])
	pub := &priv.(*ecdsa.PrivateKey).PublicKey
	const n = 3000
	t0 := time.Now()
	for i := 0; i < n; i++ {
		d := sha256.Sum256(msg)
		if !ecdsa.VerifyASN1(pub, d[:], sig) {
			panic("raw verify failed")
		}
	}
	return float64(time.Since(t0).Microseconds()) / n
}

func statement(t *policy.Trust, r int) ([]byte, error) {
	d := sha256.Sum256(fmt.Appendf(nil, "artifact-%d-%d", r, time.Now().UnixNano()))
	now := time.Now().UTC()
	return attest.NewStatement([]attest.Subject{{Name: fmt.Sprintf("artifact-%d", r), Digest: map[string]string{"sha256": fmt.Sprintf("%x", d)}}},
		attest.Predicate{Gate: "load", Policy: attest.PolicyRef{Version: t.Version(), Digest: map[string]string{"sha256": t.Digest}},
			RequestID: fmt.Sprintf("load-%08d-%x", r, d[:6]), Created: now.Truncate(time.Second), Expires: now.Add(time.Hour).Truncate(time.Second)})
}

// setup writes n file keys and a trust directory with role "signers"
// (threshold n) and gate "load".
func setup(ctx context.Context, dir string, n int, withLog bool) ([]hsm.Signer, string, error) {
	var signers []hsm.Signer
	var pubs []*keys.PublicKey
	be := filekey.Backend{}
	for i := 0; i < n; i++ {
		uri := "file:" + filepath.Join(dir, fmt.Sprintf("k%02d.key", i))
		pub, err := be.Generate(ctx, uri, hsm.ECDSAP256)
		if err != nil {
			return nil, "", err
		}
		s, err := be.Signer(ctx, uri)
		if err != nil {
			return nil, "", err
		}
		signers, pubs = append(signers, s), append(pubs, pub)
	}
	adminURI := "file:" + filepath.Join(dir, "admin.key")
	admin, err := be.Generate(ctx, adminURI, hsm.ECDSAP256)
	if err != nil {
		return nil, "", err
	}
	trustDir := filepath.Join(dir, "trust")
	d, err := author.Init(trustDir, []*keys.PublicKey{admin}, 1, time.Now(), author.DefaultRootExpiry, author.DefaultTargetsExpiry)
	if err != nil {
		return nil, "", err
	}
	if err := d.SetRole("signers", pubs, n, 0); err != nil {
		return nil, "", err
	}
	if err := d.SetGate("load", []string{"signers"}, 0); err != nil {
		return nil, "", err
	}
	if withLog {
		lk, err := be.Generate(ctx, "file:"+filepath.Join(dir, "log.key"), hsm.ECDSAP256)
		if err != nil {
			return nil, "", err
		}
		if err := d.SetLogKey(lk, "quorate.bench/log", 0); err != nil {
			return nil, "", err
		}
	}
	as, err := be.Signer(ctx, adminURI)
	if err != nil {
		return nil, "", err
	}
	if _, err := d.Sign(ctx, as); err != nil {
		return nil, "", err
	}
	return signers, trustDir, d.Save()
}

func startReplicas(ctx context.Context, c *config, dir, trustDir string) ([]string, []int, func(), error) {
	var cmds []*exec.Cmd
	stop := func() {
		for _, cmd := range cmds {
			_ = cmd.Process.Signal(os.Interrupt)
			_ = cmd.Wait()
		}
	}
	var urls []string
	for i := 0; i < c.replicas; i++ {
		addrFile := filepath.Join(dir, fmt.Sprintf("addr%d", i))
		args := []string{"serve", "--trust", trustDir, "--listen", "127.0.0.1:0", "--addr-file", addrFile, "--rate-limit", "0", "--max-conns-per-client", "0", "--log-level", "error"}
		if c.store != "" {
			args = append(args, "--store", c.store)
		} else {
			args = append(args, "--data", filepath.Join(dir, "data"))
		}
		if c.withLog {
			args = append(args, "--log-key", "file:"+filepath.Join(dir, "log.key"))
		}
		if c.hookCfg != "" {
			args = append(args, "--webhooks", c.hookCfg, "--checkpoint-interval", "1s")
		}
		if c.profile != "" {
			addr, err := freeAddr()
			if err != nil {
				return nil, nil, stop, err
			}
			c.debug = append(c.debug, addr)
			args = append(args, "--debug-addr", addr)
		}
		args = append(args, strings.Fields(c.extra)...)
		cmd := exec.CommandContext(ctx, c.quorate, args...)
		cmd.Stderr = os.Stderr
		cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+filepath.Join(dir, "state"))
		if err := cmd.Start(); err != nil {
			return nil, nil, stop, fmt.Errorf("starting %s: %w", c.quorate, err)
		}
		cmds = append(cmds, cmd)
		deadline := time.Now().Add(15 * time.Second)
		for {
			data, err := os.ReadFile(addrFile)
			if err == nil && len(bytes.TrimSpace(data)) > 0 {
				urls = append(urls, "http://"+string(bytes.TrimSpace(data)))
				break
			}
			if time.Now().After(deadline) {
				return nil, nil, stop, fmt.Errorf("replica %d did not start", i)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	var pids []int
	for _, cmd := range cmds {
		pids = append(pids, cmd.Process.Pid)
	}
	return urls, pids, stop, nil
}
