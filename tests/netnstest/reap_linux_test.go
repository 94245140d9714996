//go:build linux

package netnstest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestReapStale checks that New deletes namespaces left behind by a dead
// test process (as after a kill -9), and that parseName reads the names.
func TestReapStale(t *testing.T) {
	RequireRoot(t)
	if n, pid := parseName("fsmt-0a1b2c-n17-p4242-a"); n != 17 || pid != 4242 {
		t.Fatalf("parseName: n=%d pid=%d", n, pid)
	}
	cmd := exec.Command("/proc/self/exe", "-test.run=^$")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := cmd.Process.Pid // exited and reaped: no such process now
	name := fmt.Sprintf("%sstale-n250-p%d-a", NamePrefix, dead)
	if err := createNamed(name); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(NetnsDir, name)
	t.Cleanup(func() {
		if _, err := os.Stat(path); err == nil {
			destroyNamed(name)
		}
	})
	New(t, Options{})
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stale namespace %s not reaped (stat: %v)", name, err)
	}
}
