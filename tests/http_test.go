package tests

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"

	fsmrt "github.com/fsmgen/fsmgen/runtime"
	"github.com/fsmgen/fsmgen/runtime/clock"
	"github.com/fsmgen/fsmgen/runtime/link"
)

// TestHTTPOverStack serves net/http from one stack and fetches from another
// over the in-memory link with several concurrent requests, unmodified
// net/http on both sides.
func TestHTTPOverStack(t *testing.T) {
	la, lb := link.Pair(clock.NewReal(), link.PairConfig{})
	defer la.Close()
	defer lb.Close()
	opts := fsmrt.Options{MinRTO: 20 * time.Millisecond, MSL: 100 * time.Millisecond}
	oa, ob := opts, opts
	oa.Addr, ob.Addr = netip.MustParseAddr("10.201.1.1"), netip.MustParseAddr("10.201.1.2")
	client, err := fsmrt.NewStack(la, oa)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := fsmrt.NewStack(lb, ob)
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	ln, err := server.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 100<<10)
	for i := range body {
		body[i] = byte(i * 7)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "path=%s\n", r.URL.Path)
		w.Write(body)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	hc := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return client.DialContext(ctx, network, addr)
			},
			MaxIdleConnsPerHost: 4,
		},
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := hc.Get(fmt.Sprintf("http://10.201.1.2/r%d", i))
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			if err != nil {
				errs <- err
				return
			}
			want := fmt.Sprintf("path=/r%d\n", i) + string(body)
			if string(got) != want {
				errs <- fmt.Errorf("request %d: body of %d bytes differs from the %d expected", i, len(got), len(want))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
