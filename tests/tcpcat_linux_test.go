package tests

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fsmgen/fsmgen/tests/netnstest"
)

// buildTcpcat compiles cmd/tcpcat once per test binary run.
var buildTcpcat = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "tcpcat")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "tcpcat")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/fsmgen/fsmgen/cmd/tcpcat").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build cmd/tcpcat: %v\n%s", err, out)
	}
	return bin, nil
})

// startIn starts cmd inside ns: a child forked from a thread that is in
// the namespace lives in it.
func startIn(t *testing.T, ns *netnstest.NS, cmd *exec.Cmd) {
	t.Helper()
	if err := ns.Do(cmd.Start); err != nil {
		t.Fatalf("start %v: %v", cmd.Args, err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
}

// TestTcpcatInterop runs the tcpcat binary in a namespace against the Linux
// kernel's TCP in another: dial with half-close and exit 0 after TIME-WAIT;
// a refused dial exits non-zero saying so; -l -echo serves concurrent
// kernel clients and exits 0 on SIGTERM.
func TestTcpcatInterop(t *testing.T) {
	netnstest.RequireRoot(t)
	bin, err := buildTcpcat()
	if err != nil {
		t.Fatal(err)
	}
	tp := netnstest.New(t, netnstest.Options{})
	if err := tp.A.DropKernelRSTs(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	t.Run("dial, half-close, reply, exit 0", func(t *testing.T) {
		// Kernel server in B: read to EOF, answer with the byte count.
		var ln net.Listener
		if err := tp.B.Do(func() (err error) {
			ln, err = net.Listen("tcp4", netip.AddrPortFrom(tp.AddrB, 9100).String())
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			n, _ := io.Copy(io.Discard, c)
			fmt.Fprintf(c, "kernel got %d bytes\n", n)
		}()
		in := make([]byte, 300_000)
		rand.Read(in)
		var stdout, stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, bin, "-v", "-msl", "200ms", netip.AddrPortFrom(tp.AddrB, 9100).String())
		cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(in), &stdout, &stderr
		startIn(t, tp.A, cmd)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("tcpcat: %v\nstderr:\n%s", err, stderr.String())
		}
		if want := fmt.Sprintf("kernel got %d bytes\n", len(in)); stdout.String() != want {
			t.Fatalf("stdout %q, want %q", stdout.String(), want)
		}
		for _, step := range []string{"from=SYN-SENT event=RCV_SYN_ACK to=ESTABLISHED", "to=TIME-WAIT", "from=TIME-WAIT event=TIME_WAIT_TIMEOUT to=CLOSED"} {
			if !strings.Contains(stderr.String(), step) {
				t.Errorf("-v trace lacks %q:\n%s", step, stderr.String())
			}
		}
	})

	t.Run("refused dial exits 1 with a message", func(t *testing.T) {
		var stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, bin, netip.AddrPortFrom(tp.AddrB, 9101).String())
		cmd.Stdin, cmd.Stderr = strings.NewReader(""), &stderr
		startIn(t, tp.A, cmd)
		err := cmd.Wait()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Fatalf("exit: %v, want status 1", err)
		}
		if !strings.Contains(stderr.String(), "connection refused") {
			t.Fatalf("stderr %q does not say the connection was refused", stderr.String())
		}
	})

	t.Run("-l -echo serves kernel clients until SIGTERM", func(t *testing.T) {
		var stderr bytes.Buffer
		addr := netip.AddrPortFrom(tp.AddrA, 9102)
		cmd := exec.CommandContext(ctx, bin, "-l", "-echo", "-msl", "100ms", addr.String())
		cmd.Stderr = &stderr
		startIn(t, tp.A, cmd)
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for i := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- tp.B.Do(func() error {
					var c net.Conn
					var err error
					for try := 0; try < 50; try++ { // tcpcat may still be starting
						if c, err = net.DialTimeout("tcp4", addr.String(), time.Second); err == nil {
							break
						}
						time.Sleep(50 * time.Millisecond)
					}
					if err != nil {
						return err
					}
					defer c.Close()
					c.SetDeadline(time.Now().Add(20 * time.Second))
					msg := bytes.Repeat([]byte{byte('a' + i)}, 100_000)
					go func() { c.Write(msg); c.(*net.TCPConn).CloseWrite() }()
					got, err := io.ReadAll(c)
					if err != nil {
						return err
					}
					if !bytes.Equal(got, msg) {
						return fmt.Errorf("client %d: echo of %d bytes differs", i, len(got))
					}
					return nil
				})
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("tcpcat -l -echo after SIGTERM: %v\nstderr:\n%s", err, stderr.String())
			}
		case <-time.After(15 * time.Second):
			t.Fatal("tcpcat -l -echo did not exit after SIGTERM")
		}
	})
}
