package verify

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/fsmgen/fsmgen/gen/spec"
)

func load(t *testing.T, path string) *spec.Machine {
	t.Helper()
	m, err := spec.ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func run(t *testing.T, path string, opts Options) *Report {
	t.Helper()
	r, err := Verify(load(t, path), opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func property(t *testing.T, r *Report, name string) *PropertyResult {
	t.Helper()
	for _, p := range r.Properties {
		if p.Property.Name == name {
			return p
		}
	}
	t.Fatalf("no result for property %s", name)
	return nil
}

func findings(r *Report, kind string) []*Finding {
	var out []*Finding
	for _, f := range r.Findings {
		if f.Kind == kind {
			out = append(out, f)
		}
	}
	return out
}

// same compares texts line by line, reporting the first difference.
func same(t *testing.T, what, got, want string) {
	t.Helper()
	want = strings.TrimPrefix(want, "\n")
	if got == want {
		return
	}
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			t.Fatalf("%s: line %d:\n got: %q\nwant: %q\nall of it:\n%s", what, i+1, gl, wl, got)
		}
	}
}

func report(r *Report) string {
	var b bytes.Buffer
	r.Write(&b, true)
	return b.String()
}

// TestABP: the alternating-bit protocol over lossy, duplicating FIFO
// channels delivers, and nothing is wrong with it.
func TestABP(t *testing.T) {
	r := run(t, "testdata/abp.yaml", DefaultOptions())
	if r.Failed() || len(r.Findings) != 0 || r.Proved() != 3 {
		t.Fatalf("want 3 properties proved and no findings:\n%s", report(r))
	}
	w := property(t, r, "first-delivery")
	same(t, "witness", w.Trace.String(), `
step  move                 A            B       A→B  B→A
0     start                READY0       READY0  -    -
1     A user SEND          WAIT0 [rto]  READY0  D0   -
2     B recv D0 as RCV_D0  WAIT0 [rto]  READY1  -    A0
`)
}

// TestABPReorder: with reordering a stale D0 overtakes and is delivered as
// new data, the textbook failure of the alternating-bit protocol. (With
// reordering a channel is a multiset, shown sorted.)
func TestABPReorder(t *testing.T) {
	opts := DefaultOptions()
	opts.Reorder = true
	r := run(t, "testdata/abp.yaml", opts)
	p := property(t, r, "delivers-two")
	if p.Proved {
		t.Fatalf("delivers-two holds with reordering:\n%s", report(r))
	}
	same(t, "trace", p.Trace.String(), `
step  move                  A            B       A→B    B→A
0     start                 READY0       READY0  -      -
1     A user SEND           WAIT0 [rto]  READY0  D0     -
2     B recv D0 as RCV_D0   WAIT0 [rto]  READY1  -      A0
3     A timer rto: TIMEOUT  WAIT0 [rto]  READY1  D0     A0
4     A recv A0 as RCV_A0   READY1       READY1  D0     -
5     A user SEND           WAIT1 [rto]  READY1  D0,D1  -
6     B recv D1 as RCV_D1   WAIT1 [rto]  READY0  D0     A1
7     B recv D0 as RCV_D0   WAIT1 [rto]  READY1  -      A0,A1
8     A recv A1 as RCV_A1   READY0       READY1  -      A0
`)
	same(t, "rest", p.Rest.String(), `
step  move                                          A       B       A→B  B→A
9     A recv A0 as RCV_A0 (ignored) — no move left  READY0  READY1  -    -
`)
}

// TestABPNoReack: a receiver that drops a duplicate D0 instead of
// acknowledging it again leaves the sender retransmitting for ever.
func TestABPNoReack(t *testing.T) {
	r := run(t, "testdata/abp_noreack.yaml", DefaultOptions())
	if !r.Failed() {
		t.Fatal("seeded bug not found")
	}
	p := property(t, r, "delivers")
	same(t, "detail", p.Detail, "after this run, in [WAIT0, READY1], no continuation reaches [READY1, READY1]: the peers can only cycle through 3 configurations, none in the goal")
	same(t, "trace", p.Trace.String(), `
step  move                 A            B       A→B  B→A
0     start                READY0       READY0  -    -
1     A user SEND          WAIT0 [rto]  READY0  D0   -
2     B recv D0 as RCV_D0  WAIT0 [rto]  READY1  -    A0
3     lose A0 (B→A)        WAIT0 [rto]  READY1  -    -
`)
	same(t, "cycle", p.Cycle.String(), `
step  move                           A            B       A→B  B→A
4     A timer rto: TIMEOUT           WAIT0 [rto]  READY1  D0   -
5     B recv D0 as RCV_D0 (ignored)  WAIT0 [rto]  READY1  -    -
`)
}

// TestABPReject: a duplicate arriving where no transition or ignore rule
// handles it is a rejected event.
func TestABPReject(t *testing.T) {
	r := run(t, "testdata/abp_reject.yaml", DefaultOptions())
	fs := findings(r, "rejected")
	if len(fs) != 1 {
		t.Fatalf("want 1 rejected finding:\n%s", report(r))
	}
	f := fs[0]
	same(t, "message", f.Pos.String()+": "+f.Msg, "testdata/abp_reject.yaml:9:12: message D0 arrives in READY1 as RCV_D0, which READY1 rejects (no transition and no ignore rule)")
	same(t, "trace", f.Trace.String(), `
step  move                            A            B       A→B  B→A
0     start                           READY0       READY0  -    -
1     A user SEND                     WAIT0 [rto]  READY0  D0   -
2     B recv D0 as RCV_D0             WAIT0 [rto]  READY1  -    A0
3     A timer rto: TIMEOUT            WAIT0 [rto]  READY1  D0   A0
4     B recv D0 as RCV_D0 (REJECTED)  WAIT0 [rto]  READY1  -    A0
`)
	if len(findings(r, "unreachable-state")) != 1 || len(findings(r, "untaken-transition")) != 5 {
		t.Errorf("coverage findings:\n%s", report(r))
	}
}

// TestTCPSeededBugClosing: the TCP spec without CLOSING --RCV_ACK_OF_FIN-->
// TIME-WAIT; a simultaneous close then never completes.
func TestTCPSeededBugClosing(t *testing.T) {
	r := run(t, "testdata/tcp_bug_closing.yaml", DefaultOptions())
	if !property(t, r, "simultaneous-close").Proved {
		t.Errorf("simultaneous close should still be reachable")
	}
	p := property(t, r, "close")
	if p.Proved {
		t.Fatalf("seeded bug not found:\n%s", report(r))
	}
	same(t, "detail", p.Detail, "after this run, in [CLOSING, CLOSING], no continuation reaches [CLOSED, CLOSED]: the peers can only cycle through 48 configurations, none in the goal")
	same(t, "trace", p.Trace.String(), `
step  move                                A                        B                        A→B          B→A
0     start                               ESTABLISHED              ESTABLISHED              -            -
1     A user CLOSE                        FIN-WAIT-1 [retransmit]  ESTABLISHED              FIN          -
2     B user CLOSE                        FIN-WAIT-1 [retransmit]  FIN-WAIT-1 [retransmit]  FIN          FIN
3     A recv FIN as RCV_FIN [!fin_acked]  CLOSING [retransmit]     FIN-WAIT-1 [retransmit]  FIN,ACK_FIN  -
4     B recv FIN as RCV_FIN [!fin_acked]  CLOSING [retransmit]     CLOSING [retransmit]     ACK_FIN      ACK_FIN
`)
	same(t, "cycle", p.Cycle.String(), `
step  move                                                  A                     B                     A→B              B→A
5     A timer retransmit: RTO_TIMEOUT [!retries_exhausted]  CLOSING [retransmit]  CLOSING [retransmit]  ACK_FIN,FIN_ACK  ACK_FIN
6     lose FIN_ACK (A→B)                                    CLOSING [retransmit]  CLOSING [retransmit]  ACK_FIN          ACK_FIN
`)
}

// TestLivelock: PING and PONG bounce for ever once served.
func TestLivelock(t *testing.T) {
	r := run(t, "testdata/pingpong.yaml", DefaultOptions())
	fs := findings(r, "livelock")
	if len(fs) != 1 {
		t.Fatalf("want 1 livelock:\n%s", report(r))
	}
	same(t, "trace", fs[0].Trace.String(), `
step  move                     A        B        A→B   B→A
0     start                    IDLE     IDLE     -     -
1     A user SERVE             PLAYING  IDLE     PING  -
2     B recv PING as RCV_PING  PLAYING  PLAYING  -     PONG
`)
	same(t, "cycle", fs[0].Cycle.String(), `
step  move                     A        B        A→B   B→A
3     A recv PONG as RCV_PONG  PLAYING  PLAYING  PING  -
4     B recv PING as RCV_PING  PLAYING  PLAYING  -     PONG
`)
}

// TestDeadlock: a request that is never retransmitted strands its sender
// when lost; over reliable channels the same spec is fine.
func TestDeadlock(t *testing.T) {
	r := run(t, "testdata/oneshot.yaml", DefaultOptions())
	fs := findings(r, "deadlock")
	if len(fs) != 2 {
		t.Fatalf("want 2 deadlocks:\n%s", report(r))
	}
	same(t, "message", fs[0].Msg, "deadlock in [WAITING, IDLE]: nothing in flight, no timer armed, no user event left, and A in WAITING (neither final nor stable)")
	same(t, "trace", fs[0].Trace.String(), `
step  move            A        B     A→B  B→A
0     start           IDLE     IDLE  -    -
1     A user GO       WAITING  IDLE  REQ  -
2     lose REQ (A→B)  WAITING  IDLE  -    -
`)
	if p := property(t, r, "done"); p.Proved || p.Detail != "after this run, in [WAITING, IDLE], no continuation reaches [DONE, DONE]: no move is possible there" {
		t.Errorf("done: %v %s", p.Proved, p.Detail)
	}
	opts := DefaultOptions()
	opts.Loss, opts.Dup = false, false
	if r := run(t, "testdata/oneshot.yaml", opts); r.Failed() {
		t.Errorf("reliable channels:\n%s", report(r))
	}
}

// TestTCP runs the real spec: it must finish in seconds, explore
// completely, enter every state, and find simultaneous open.
func TestTCP(t *testing.T) {
	start := time.Now()
	m := load(t, "../../spec/tcp793.yaml")
	r, err := Verify(m, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("took %v", d)
	}
	text := report(r)
	t.Logf("\n%s", text)
	if len(findings(r, "incomplete")) > 0 || len(findings(r, "unreachable-state")) > 0 {
		t.Errorf("incomplete exploration or unreachable states")
	}
	if len(r.Properties) != len(m.Properties) {
		t.Errorf("%d verdicts for %d properties", len(r.Properties), len(m.Properties))
	}
	if p := property(t, r, "simultaneous-open"); !p.Proved || len(p.Trace.Steps) != 5 {
		t.Errorf("simultaneous-open: %v", p.Detail)
	}
	var again bytes.Buffer
	r2, _ := Verify(m, DefaultOptions())
	r2.Write(&again, true)
	if again.String() != text {
		t.Errorf("output is not deterministic")
	}
	// The spec's own start/stop actions alone: still runs to completion.
	opts := DefaultOptions()
	opts.SpecTimers = true
	if r, err := Verify(m, opts); err != nil || len(findings(r, "incomplete")) > 0 {
		t.Errorf("spec timers: %v", err)
	}
}

// TestUsersScenario: a spec without properties explores every user event,
// here SEND at both peers, which this one-way protocol does not support: a
// sender waiting for an ack rejects the other sender's data.
func TestUsersScenario(t *testing.T) {
	m := load(t, "testdata/abp.yaml")
	m.Properties = nil
	r, err := Verify(m, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Scenarios) != 1 || r.Scenarios[0].Name != "users" || len(findings(r, "rejected")) != 3 {
		t.Fatalf("%s", report(r))
	}
	same(t, "rejected", findings(r, "rejected")[0].Msg, "message D0 arrives in WAIT0 as RCV_D0, which WAIT0 rejects (no transition and no ignore rule)")
	opts := DefaultOptions()
	opts.Users = []User{{Peer: 0, Event: "SEND"}}
	m = load(t, "testdata/abp.yaml")
	r, err = Verify(m, opts)
	if err != nil || len(r.Scenarios) != 5 {
		t.Fatalf("%v\n%s", err, report(r))
	}
	opts.Users = []User{{Peer: -1, Event: "NOPE"}}
	if _, err := Verify(m, opts); err == nil || !strings.Contains(err.Error(), `unknown user event "NOPE"`) {
		t.Errorf("unknown user event: %v", err)
	}
}

func TestParseUsers(t *testing.T) {
	us, err := ParseUsers("A:OPEN_PASSIVE, B:OPEN_ACTIVE,CLOSE,")
	if err != nil {
		t.Fatal(err)
	}
	want := []User{{0, "OPEN_PASSIVE"}, {1, "OPEN_ACTIVE"}, {-1, "CLOSE"}}
	if len(us) != len(want) {
		t.Fatalf("got %v", us)
	}
	for i := range want {
		if us[i] != want[i] {
			t.Errorf("got %v, want %v", us[i], want[i])
		}
	}
	if _, err := ParseUsers("C:CLOSE"); err == nil {
		t.Error("peer C accepted")
	}
}

func TestOptions(t *testing.T) {
	m := load(t, "testdata/abp.yaml")
	for _, o := range []Options{{Capacity: 0}, {Capacity: 9}, {Capacity: 2, Retries: -1}} {
		if _, err := Verify(m, o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	o := DefaultOptions()
	o.MaxStates = 5
	r, err := Verify(m, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(findings(r, "incomplete")) == 0 || !r.Failed() {
		t.Errorf("state bound not reported:\n%s", report(r))
	}
}

// TestSpecKeys checks the verify keys of the spec language: what they parse
// to, and the errors for misuse.
func TestSpecKeys(t *testing.T) {
	m := load(t, "../../spec/tcp793.yaml")
	var ack *spec.Message
	for _, msg := range m.Messages {
		if msg.Name == "ACK_FIN" {
			ack = msg
		}
	}
	if ack == nil || !ack.Sends("snd_ack", "CLOSE-WAIT", "RCV_FIN") || ack.Sends("snd_ack", "ESTABLISHED", "RCV_FIN") || !ack.Sends("accept_fin", "ESTABLISHED", "RCV_FIN") {
		t.Errorf("ACK_FIN sent_in")
	}
	if got := strings.Join(ack.Classify("CLOSING"), ","); got != "RCV_ACK_OF_FIN" {
		t.Errorf("ACK_FIN in CLOSING: %s", got)
	}
	if got := strings.Join(ack.Classify("ESTABLISHED"), ","); got != "RCV_ACK" {
		t.Errorf("ACK_FIN in ESTABLISHED: %s", got)
	}
	for _, msg := range m.Messages {
		if msg.Name == "RST_REPLY" {
			if got := strings.Join(msg.Classify("ESTABLISHED"), ","); got != "RCV_RST," {
				t.Errorf("RST_REPLY in ESTABLISHED: %q", got)
			}
			if msg.Sends("snd_reset_reply", "CLOSED", "RCV_SYN") || !msg.Sends("snd_reset_reply", "CLOSED", "RCV_ACK") {
				t.Errorf("RST_REPLY sent_on")
			}
		}
	}
	if g := m.GuardModelByName("passive"); g == nil || !g.Flag() || g.SetBy[0] != "create_tcb" {
		t.Errorf("passive model: %+v", g)
	}
	if g := m.GuardModelByName("retries_exhausted"); g == nil || !g.Counter() || g.Counts != "retransmit" {
		t.Errorf("retries_exhausted model: %+v", g)
	}
	if len(m.HostTimers) != 2 || len(m.Stable) != 3 { // retransmit, fin_wait_2
		t.Errorf("host_timers %v, stable %v", m.HostTimers, m.Stable)
	}

	base := `machine: x
states:
  - {name: A, initial: true, final: true}
  - {name: B}
events:
  - {name: GO, kind: user}
  - {name: RCV}
  - {name: T, kind: timer}
timers:
  - {name: t, duration: d, event: T}
transitions:
  - {from: A, on: GO, guard: g, to: B, actions: [send, start t]}
  - {from: A, on: GO, guard: "!g"}
  - {from: B, on: RCV, to: A}
  - {from: B, on: T, to: A}
default: ignore
`
	cases := []struct{ extra, want string }{
		{"messages:\n  - {name: M, sent: [send], sent_in: {other: A}, event: RCV}\n", `sent_in names action "other", which is not in the message's "sent" list`},
		{"messages:\n  - {name: M, sent: [send], sent_on: {send: NOPE}, event: RCV}\n", `unknown event "NOPE" in "sent_on"`},
		{"messages:\n  - {name: M, sent: [send], event: RCV, in: {C: RCV}}\n", `unknown state or group "C" in "in"`},
		{"messages:\n  - {name: M, sent: [send], event: RCV, in: {B: NOPE}}\n", `unknown event "NOPE" in "in"`},
		{"messages:\n  - {name: M, sent: [send], event: RCV, guards: {h: true}}\n", `message guards names guard "h", which no transition uses`},
		{"guards:\n  - {name: g, set_by: [nope]}\n", `set_by names action "nope", which no transition, entry or exit runs`},
		{"guards:\n  - {name: g, set_by: [send], counts: send}\n", `mixes a flag`},
		{"guards:\n  - {name: g, reset_by: [send]}\n", `reset_by needs "counts: ACTION"`},
		{"guards:\n  - {name: g}\n  - {name: g}\n", `duplicate guard model "g"`},
		{"host_timers:\n  - {timer: nope, armed_in: B}\n", `unknown timer "nope"`},
		{"host_timers:\n  - {timer: t}\n", `has no "armed_in"`},
		{"stable: [C]\n", `unknown state or group "C" in "stable"`},
		{"properties:\n  - {name: p, goal: [A, A], users_a: [NOPE]}\n", `unknown event "NOPE" in "users_a"`},
	}
	for _, c := range cases {
		_, err := spec.Parse("x.yaml", []byte(base+c.extra))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want an error containing %q", c.extra, err, c.want)
		}
	}
	if _, err := spec.Parse("x.yaml", []byte(base+"messages:\n  - {name: M, sent: [send], event: RCV, in: {A: drop, B: [RCV, drop]}, guards: {g: true}}\nguards:\n  - {name: g, counts: send}\nhost_timers:\n  - {timer: t, armed_in: B}\nstable: B\n")); err != nil {
		t.Errorf("valid keys rejected: %v", err)
	}
}
