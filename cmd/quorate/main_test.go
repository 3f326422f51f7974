package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets the scripts run the real CLI as the command "quorate".
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"quorate": func() {
			os.Exit(newApp(os.Stdin, os.Stdout, os.Stderr, os.Getenv).run(context.Background(), os.Args[1:]))
		},
	})
}

// TestScripts runs testdata/script/*.txtar. Besides the standard commands:
//
//	exitcode N CMD ARGS...   run CMD and require exit status N (stdout and stderr are kept)
//	replace FILE OLD NEW     replace the first OLD in FILE with NEW (OLD must be there)
//	perm FILE MODE           require FILE's permission bits to be MODE (octal)
//	coordinator start ARGS...  start 'quorate serve --listen 127.0.0.1:0 ARGS' in the
//	                         background, wait until it is ready and set $QUORATE_COORDINATOR;
//	                         it is stopped when the script ends (its stderr in $WORK/serve.log)
//	envfile VAR FILE         set $VAR to FILE's contents, trimmed (after 'cp stdout FILE')
//	coordinator reload       send it SIGHUP (then 'quorate status --wait --policy-version N')
//	json FILE [PATH [VALUE]] FILE (stdout) is one JSON document; PATH has VALUE (jsoncmd_test.go)
//	jsonflip FILE PATH       flip a bit of the base64 string at PATH (jsoncmd_test.go)
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exitcode":    cmdExitCode,
			"replace":     cmdReplace,
			"perm":        cmdPerm,
			"coordinator": cmdCoordinator,
			"envfile":     cmdEnvFile,
			"json":        cmdJSON,     // jsoncmd_test.go
			"jsonflip":    cmdJSONFlip, // jsoncmd_test.go
		},
	})
}

func cmdExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exitcode N CMD ARGS...")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("running %s: %v", args[1], err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited %d, want %d", args[1], got, want)
	}
}

func cmdReplace(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: replace FILE OLD NEW")
	}
	p := ts.MkAbs(args[0])
	data, err := os.ReadFile(p)
	ts.Check(err)
	if !strings.Contains(string(data), args[1]) {
		ts.Fatalf("%s does not contain %q", args[0], args[1])
	}
	ts.Check(os.WriteFile(p, []byte(strings.Replace(string(data), args[1], args[2], 1)), 0o644))
}

func cmdPerm(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: perm FILE MODE")
	}
	fi, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	if got := fmt.Sprintf("%04o", fi.Mode().Perm()); got != args[1] {
		ts.Fatalf("%s has mode %s, want %s", args[0], got, args[1])
	}
}

func cmdEnvFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: envfile VAR FILE")
	}
	ts.Setenv(args[0], strings.TrimSpace(ts.ReadFile(args[1])))
}

// coordinators holds each script's coordinator process by work directory.
var coordinators sync.Map

// cmdCoordinator runs a real coordinator for a script (see TestScripts).
func cmdCoordinator(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: coordinator start ARGS... | coordinator reload")
	}
	work := ts.Getenv("WORK")
	switch args[0] {
	case "reload":
		p, _ := coordinators.Load(work)
		if p == nil {
			ts.Fatalf("coordinator reload: none started")
		}
		ts.Check(p.(*os.Process).Signal(syscall.SIGHUP))
		return
	case "start":
	default:
		ts.Fatalf("usage: coordinator start ARGS... | coordinator reload")
	}
	bin, err := exec.LookPath("quorate")
	ts.Check(err)
	addrFile := ts.MkAbs("serve.addr")
	logFile, err := os.Create(ts.MkAbs("serve.log"))
	ts.Check(err)
	cmd := exec.Command(bin, append([]string{"serve", "--listen", "127.0.0.1:0", "--addr-file", addrFile}, args[1:]...)...)
	cmd.Dir = work
	for _, k := range []string{"PATH", "HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "TMPDIR"} {
		cmd.Env = append(cmd.Env, k+"="+ts.Getenv(k))
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	ts.Check(cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	ts.Defer(func() {
		coordinators.Delete(work)
		_ = cmd.Process.Kill()
		<-exited
		logFile.Close()
	})
	coordinators.Store(work, cmd.Process)
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-exited:
			ts.Fatalf("quorate serve exited: %v (see serve.log)", err)
		default:
		}
		if addr, err := os.ReadFile(addrFile); err == nil && len(addr) > 0 {
			url := "http://" + strings.TrimSpace(string(addr))
			if resp, err := http.Get(url + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					ts.Setenv("QUORATE_COORDINATOR", url)
					return
				}
			}
		}
		if time.Now().After(deadline) {
			ts.Fatalf("quorate serve not ready after 30s (see serve.log)")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
