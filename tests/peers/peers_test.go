package peers

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"testing"
	"time"
)

// TestEnvironmentsCarryBytes checks every benchmark environment moves data
// exactly both ways (with loss too, for the user-space stacks), so the
// benchmarks measure working stacks.
func TestEnvironmentsCarryBytes(t *testing.T) {
	cases := []struct {
		p   peer
		cfg Config
	}{
		{fsmgenPeer, Config{MTU: 1500}},
		{fsmgenPeer, Config{MTU: 65535}},
		{fsmgenPeer, Config{MTU: 1500, Loss: 0.01, Seed: 1}},
		{netstackPeer, Config{MTU: 1500}},
		{netstackPeer, Config{MTU: 1500, Loss: 0.01, Seed: 1}},
		{kernelPeer, Config{}},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/mtu%d/loss%v", tc.p.name, tc.cfg.MTU, tc.cfg.Loss), func(t *testing.T) {
			env, err := tc.p.new(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer env.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			go func() {
				c, err := env.Listener.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				io.Copy(c, c)
			}()
			c, err := env.Dial(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			data := make([]byte, 1<<20)
			rand.Read(data)
			go c.Write(data)
			got := make([]byte, len(data))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatalf("echo: %v", err)
			}
			if !bytes.Equal(got, data) {
				t.Fatal("echoed bytes differ")
			}
		})
	}
}
