package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/fsmgen/fsmgen/gen/spec"
	"github.com/fsmgen/fsmgen/gen/verify"
)

// verifyCmd model-checks two instances of the spec's machine talking over
// lossy channels (package gen/verify) and exits 1 on a violated property or
// an error finding.
func verifyCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("verify", "verify [-cap N] [-retries N] [-reorder] [-loss=false] [-dup=false] [-users LIST] [-spec-timers] [-v] SPEC.yaml", stderr)
	def := verify.DefaultOptions()
	capacity := fs.Int("cap", def.Capacity, "capacity of each channel (1-8); a full channel loses what is sent")
	retries := fs.Int("retries", def.Retries, "bound of counter guards such as retries_exhausted")
	reorder := fs.Bool("reorder", false, "let channels reorder messages")
	loss := fs.Bool("loss", def.Loss, "let channels lose messages")
	dup := fs.Bool("dup", def.Dup, "let channels duplicate messages")
	users := fs.String("users", "", "also explore from the initial states with these user events, once each: a comma-separated `list` of EVENT (both peers), A:EVENT or B:EVENT")
	specTimers := fs.Bool("spec-timers", false, "ignore host_timers: only the spec's start/stop actions arm timers")
	maxStates := fs.Int("max-states", def.MaxStates, "bound on the configurations of each exploration")
	verbose := fs.Bool("v", false, "also print the witnesses of reachable properties")
	if err := parseArgs(fs, args, 1); err != nil {
		return err
	}
	m, err := spec.ParseFile(fs.Arg(0))
	if err != nil {
		return err
	}
	opts := verify.Options{Capacity: *capacity, Retries: *retries, Reorder: *reorder, Loss: *loss, Dup: *dup,
		SpecTimers: *specTimers, MaxStates: *maxStates}
	if *users != "" {
		if opts.Users, err = verify.ParseUsers(*users); err != nil {
			fmt.Fprintf(stderr, "fsmgen verify: -users: %v\n", err)
			return errUsage
		}
	}
	start := time.Now()
	r, err := verify.Verify(m, opts)
	if err != nil {
		return err
	}
	if err := r.Write(stdout, *verbose); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "verified %s in %.2fs\n", fs.Arg(0), time.Since(start).Seconds())
	if r.Failed() {
		return silent{errors.New("fsmgen: verify failed")}
	}
	return nil
}
