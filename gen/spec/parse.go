package spec

import (
	"fmt"
	"os"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// Verify keys. These keys are read only by the verifier (gen/verify,
// "fsmgen verify") and change nothing in generated code; verifyext.go holds
// their types. A spec describes one machine; verify runs two instances of it,
// peers A and B, joined by two bounded lossy channels.
//
// Top level:
//
//	guards:                        # abstract models of data-dependent guards
//	  - name: passive              # a flag: actions set and clear it, in the order they run
//	    initial: false             # value on a fresh machine (default false)
//	    set_by: [create_tcb]
//	    cleared_by: [snd_syn]
//	  - name: retries_exhausted    # a counter: true once the action ran the
//	    counts: retransmit         # retry bound of times (fsmgen verify -retries)
//	    reset_by: [process_ack]    # optional; entering a state also resets it
//	  - name: fin_acked            # no model: free (both values are explored)
//	                               # unless the arriving message carries it
//	host_timers:                   # timers the host arms and stops by itself
//	  - timer: retransmit          # armed on entering a state of armed_in (if
//	    armed_in: [SYN-SENT, ...]  # not armed), stopped on entering any other
//	stable: [LISTEN, ESTABLISHED]  # states a peer may rest in forever: no
//	                               # deadlock is reported when both peers are
//	                               # in final or stable states
//
// In a message (besides name, sent and event):
//
//	doc: text
//	sent_in: {snd_ack: [ESTABLISHED, FIN-WAIT-1]} # action emits it only in these sender
//	                               # states (the state when the action runs: the source
//	                               # state for exit and transition actions, the target
//	                               # for entry actions)
//	sent_on: {snd_reset_reply: RCV_SYN} # action emits it only on these events
//	in: {SYN-RECEIVED: RCV_ACK_OF_SYN, synchronized: [RCV_RST, RCV_RST_IN_WINDOW], SYN-SENT: drop}
//	                               # the event raised at a receiver in a state or
//	                               # group (first matching key wins; "event" otherwise);
//	                               # a list: any one of them; drop: the receiver raises
//	                               # no event (alone, or as one of a list's choices)
//	guards: {fin_acked: true}      # guard values the message carries to the receiver
//
// In a property (besides name, doc, kind, from, goal and users; users are
// injected once each at each peer):
//
//	users_a: [OPEN_PASSIVE]        # user events injected once each at peer A only
//	users_b: [OPEN_ACTIVE]         # user events injected once each at peer B only

// ParseFile reads and parses the spec at path. See Parse.
func ParseFile(path string) (*Machine, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, src)
}

// Parse parses a spec and validates it. On any problem it returns a nil
// machine and an ErrorList whose entries carry file:line:col positions.
func Parse(file string, src []byte) (*Machine, error) {
	m, errs := parse(file, src)
	if len(errs) > 0 {
		return nil, errs.sorted()
	}
	if err := Validate(m); err != nil {
		return nil, err
	}
	return m, nil
}

// ParseUnchecked parses a spec without the semantic checks of Validate; the
// result is structurally sound (names resolved) or an ErrorList is returned.
func ParseUnchecked(file string, src []byte) (*Machine, error) {
	m, errs := parse(file, src)
	if len(errs) > 0 {
		return nil, errs.sorted()
	}
	return m, nil
}

type parser struct {
	file string
	errs ErrorList
	vx   verifyExt // verify keys checked after derive (verifyext.go)
}

func (p *parser) pos(n *yaml.Node) Pos { return Pos{File: p.file, Line: n.Line, Col: n.Column} }

func (p *parser) errorf(n *yaml.Node, format string, args ...any) {
	p.errs.add(p.pos(n), format, args...)
}

// The keys each mapping accepts; anything else is an error with a suggestion.
var (
	topKeys        = []string{"machine", "package", "doc", "default", "states", "events", "groups", "timers", "transitions", "ignore", "reject", "messages", "properties", "guards", "host_timers", "stable"}
	stateKeys      = []string{"name", "doc", "initial", "final", "entry", "exit"}
	eventKeys      = []string{"name", "doc", "kind"}
	groupKeys      = []string{"name", "doc", "states"}
	timerKeys      = []string{"name", "doc", "duration", "event"}
	transitionKeys = []string{"from", "on", "guard", "to", "actions", "label", "doc"}
	ruleKeys       = []string{"in", "on", "doc"}
	messageKeys    = []string{"name", "sent", "event", "doc", "sent_in", "sent_on", "in", "guards"}
	propertyKeys   = []string{"name", "doc", "kind", "from", "goal", "users", "users_a", "users_b"}
)

// identRE is what names must look like: they become Go identifiers.
var identRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)

func parse(file string, src []byte) (*Machine, ErrorList) {
	p := &parser{file: file}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		p.errs = append(p.errs, yamlError(file, err))
		return nil, p.errs
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		p.errs.add(Pos{file, 1, 1}, "empty spec; start with \"machine: NAME\" and list states, events and transitions")
		return nil, p.errs
	}
	root := doc.Content[0]
	m := &Machine{Pos: p.pos(root)}
	fields := p.mapping(root, "spec", topKeys)
	if fields == nil {
		return nil, p.errs
	}
	if n := fields["machine"]; n != nil {
		m.Name = p.name(n, "machine")
	} else {
		p.errorf(root, "missing \"machine\"; add \"machine: NAME\" naming the machine")
	}
	if n := fields["package"]; n != nil {
		m.Package = p.scalar(n, "package")
		if m.Package != "" && !regexp.MustCompile(`^[a-z][a-z0-9_]*$`).MatchString(m.Package) {
			p.errorf(n, "package %q is not a Go package name; use lower-case letters and digits, e.g. %q", m.Package, strings.ToLower(goIdent(m.Package)))
		}
	} else if m.Name != "" {
		m.Package = strings.ToLower(goIdent(m.Name))
	}
	if n := fields["doc"]; n != nil {
		m.Doc = p.scalar(n, "doc")
	}
	if n := fields["default"]; n != nil {
		switch v := p.scalar(n, "default"); v {
		case "error", "":
			m.Default = PolicyError
		case "reject":
			m.Default = PolicyReject
		case "ignore":
			m.Default = PolicyIgnore
		default:
			p.errorf(n, "unknown default policy %q; use error, reject or ignore%s", v, suggest(v, policyNames[:]))
		}
	}
	for _, n := range p.list(fields["states"], "states") {
		m.States = append(m.States, p.state(n, len(m.States)))
	}
	if fields["states"] == nil {
		p.errorf(root, "missing \"states\"; list the machine's states under \"states:\"")
	}
	for _, n := range p.list(fields["events"], "events") {
		m.Events = append(m.Events, p.event(n, len(m.Events)))
	}
	for _, n := range p.list(fields["groups"], "groups") {
		m.Groups = append(m.Groups, p.group(n))
	}
	for _, n := range p.list(fields["timers"], "timers") {
		m.Timers = append(m.Timers, p.timer(n, len(m.Timers)))
	}
	p.checkNames(m)
	r := newResolver(p, m)
	for _, s := range m.States {
		s.Entry = r.actions(s.Entry)
		s.Exit = r.actions(s.Exit)
	}
	for _, t := range m.Timers {
		r.timerEvent(t)
	}
	for _, n := range p.list(fields["transitions"], "transitions") {
		// "on: [A, B]" is shorthand for one transition per event.
		for _, t := range p.transition(n, r) {
			t.Index = len(m.Transitions)
			m.Transitions = append(m.Transitions, t)
		}
	}
	for _, n := range p.list(fields["ignore"], "ignore") {
		if ig := p.rule(n, r, "ignore"); ig != nil {
			m.Ignores = append(m.Ignores, ig)
		}
	}
	for _, n := range p.list(fields["reject"], "reject") {
		if rj := p.rule(n, r, "reject"); rj != nil {
			m.Rejects = append(m.Rejects, rj)
		}
	}
	for _, n := range p.list(fields["messages"], "messages") {
		if msg := p.message(n, r); msg != nil {
			m.Messages = append(m.Messages, msg)
		}
	}
	for _, n := range p.list(fields["properties"], "properties") {
		if pr := p.property(n, r); pr != nil {
			m.Properties = append(m.Properties, pr)
		}
	}
	for _, n := range p.list(fields["guards"], "guards") {
		if g := p.guardModel(n, &p.vx); g != nil {
			m.GuardModels = append(m.GuardModels, g)
		}
	}
	for _, n := range p.list(fields["host_timers"], "host_timers") {
		if h := p.hostTimer(n, r); h != nil {
			m.HostTimers = append(m.HostTimers, h)
		}
	}
	if n := fields["stable"]; n != nil {
		m.Stable, _ = r.stateSet(n, "stable")
	}
	r.derive()
	p.checkVerifyExt(m, &p.vx)
	p.checkGoNames(m)
	if len(p.errs) > 0 {
		return nil, p.errs
	}
	return m, nil
}

// yamlParserProblems are the problems yaml.v3's parser (as opposed to its
// scanner) reports. yaml.v3 v3.0.1 numbers the lines of parser errors from 0
// (it adds 1 only for scanner errors), so those need one added.
var yamlParserProblems = []string{
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"did not find expected '-' indicator",
	"did not find expected <document start>",
	"did not find expected <stream-start>",
	"did not find expected key",
	"did not find expected node content",
	"found duplicate %TAG directive",
	"found duplicate %YAML directive",
	"found incompatible YAML document",
	"found undefined tag handle",
}

// yamlError turns a yaml.v3 syntax error ("yaml: line 3: ...") into a positioned Error.
func yamlError(file string, err error) *Error {
	msg := err.Error()
	line := 1
	if _, scanErr := fmt.Sscanf(msg, "yaml: line %d:", &line); scanErr == nil {
		msg = msg[strings.Index(msg, ":")+1:]
		msg = strings.TrimSpace(msg[strings.Index(msg, ":")+1:])
		if contains(yamlParserProblems, msg) {
			line++
		}
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	return &Error{Pos: Pos{file, line, 1}, Msg: "invalid YAML: " + msg + "; fix the syntax (indentation, quoting, \":\" after keys)"}
}

// mapping checks n is a mapping with only allowed keys and returns key → value node.
func (p *parser) mapping(n *yaml.Node, what string, allowed []string) map[string]*yaml.Node {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s must be a mapping of keys (%s), not %s", what, strings.Join(allowed, ", "), kindName(n))
		return nil
	}
	out := make(map[string]*yaml.Node, len(n.Content)/2)
	guessed := map[string]*yaml.Node{} // misspelled key's suggestion → its value
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !contains(allowed, k.Value) {
			p.errorf(k, "unknown key %q in %s%s", k.Value, what, orList(suggest(k.Value, allowed), allowed))
			if c := closest(k.Value, allowed); c != "" && guessed[c] == nil {
				guessed[c] = v
			}
			continue
		}
		if out[k.Value] != nil {
			p.errorf(k, "duplicate key %q in %s; keep one", k.Value, what)
			continue
		}
		out[k.Value] = v
	}
	// Read a misspelled key's value as the key it was probably meant to be,
	// so one typo ("form:") is one error, not also "no from". The spec is
	// rejected anyway: the unknown key is an error.
	for k, v := range guessed {
		if out[k] == nil {
			out[k] = v
		}
	}
	return out
}

func orList(suggestion string, allowed []string) string {
	if suggestion != "" {
		return suggestion
	}
	return "; allowed keys are " + strings.Join(allowed, ", ")
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("the scalar %q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	}
	return "nothing"
}

// list returns the items of a sequence node (nil node → nil).
func (p *parser) list(n *yaml.Node, what string) []*yaml.Node {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "%s must be a list (items start with \"- \"), not %s", what, kindName(n))
		return nil
	}
	return n.Content
}

func (p *parser) scalar(n *yaml.Node, what string) string {
	if n.Kind != yaml.ScalarNode {
		p.errorf(n, "%s must be a single value, not %s", what, kindName(n))
		return ""
	}
	if n.Tag == "!!null" {
		return ""
	}
	return n.Value
}

func (p *parser) boolean(n *yaml.Node, what string) bool {
	if n == nil {
		return false
	}
	var b bool
	if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
		p.errorf(n, "%s must be true or false, not %s", what, kindName(n))
	}
	return b
}

// name reads a required identifier-like name.
func (p *parser) name(n *yaml.Node, what string) string {
	v := p.scalar(n, what)
	if n.Kind != yaml.ScalarNode {
		return "" // reported by scalar
	}
	if v == "" {
		p.errorf(n, "%s is empty; give it a name", what)
		return ""
	}
	if !identRE.MatchString(v) {
		p.errorf(n, "%s %q is not a valid name; use letters, digits, '-' and '_', starting with a letter", what, v)
	}
	return v
}

// names reads a value that is either one name or a list of names.
func (p *parser) names(n *yaml.Node, what string) ([]string, []*yaml.Node) {
	if n.Kind == yaml.SequenceNode {
		var out []string
		var nodes []*yaml.Node
		for _, c := range n.Content {
			out = append(out, p.scalar(c, what))
			nodes = append(nodes, c)
		}
		if len(out) == 0 {
			p.errorf(n, "%s is an empty list; name at least one", what)
		}
		return out, nodes
	}
	v := p.scalar(n, what)
	if v == "" {
		return nil, nil
	}
	return []string{v}, []*yaml.Node{n}
}

func (p *parser) state(n *yaml.Node, index int) *State {
	s := &State{Index: index, Pos: p.pos(n)}
	f := p.mapping(n, "state", stateKeys)
	if f == nil {
		return s
	}
	if f["name"] == nil {
		p.errorf(n, "state has no \"name\"; add \"name: STATE\"")
	} else {
		s.Name = p.name(f["name"], "state name")
		s.Pos = p.pos(f["name"])
	}
	if f["doc"] != nil {
		s.Doc = p.scalar(f["doc"], "doc")
	}
	s.Initial = p.boolean(f["initial"], "initial")
	s.Final = p.boolean(f["final"], "final")
	s.Entry = p.rawActions(f["entry"], "entry")
	s.Exit = p.rawActions(f["exit"], "exit")
	return s
}

func (p *parser) event(n *yaml.Node, index int) *Event {
	e := &Event{Index: index, Pos: p.pos(n)}
	f := p.mapping(n, "event", eventKeys)
	if f == nil {
		return e
	}
	if f["name"] == nil {
		p.errorf(n, "event has no \"name\"; add \"name: EVENT\"")
	} else {
		e.Name = p.name(f["name"], "event name")
		e.Pos = p.pos(f["name"])
	}
	if f["doc"] != nil {
		e.Doc = p.scalar(f["doc"], "doc")
	}
	if k := f["kind"]; k != nil {
		switch v := p.scalar(k, "kind"); v {
		case "input", "":
			e.Kind = KindInput
		case "user":
			e.Kind = KindUser
		case "timer":
			e.Kind = KindTimer
		default:
			p.errorf(k, "unknown event kind %q; use user, input or timer%s", v, suggest(v, kindNames[:]))
		}
	}
	return e
}

func (p *parser) group(n *yaml.Node) *Group {
	g := &Group{Pos: p.pos(n)}
	f := p.mapping(n, "group", groupKeys)
	if f == nil {
		return g
	}
	if f["name"] == nil {
		p.errorf(n, "group has no \"name\"; add \"name: GROUP\"")
	} else {
		g.Name = p.name(f["name"], "group name")
		g.Pos = p.pos(f["name"])
	}
	if f["doc"] != nil {
		g.Doc = p.scalar(f["doc"], "doc")
	}
	if f["states"] == nil {
		p.errorf(n, "group %q has no \"states\"; list its member states", g.Name)
	} else {
		names, nodes := p.names(f["states"], "group states")
		g.States = names
		g.statesNodes = nodes
	}
	return g
}

func (p *parser) timer(n *yaml.Node, index int) *Timer {
	t := &Timer{Index: index, Pos: p.pos(n)}
	f := p.mapping(n, "timer", timerKeys)
	if f == nil {
		return t
	}
	if f["name"] == nil {
		p.errorf(n, "timer has no \"name\"; add \"name: TIMER\"")
	} else {
		t.Name = p.name(f["name"], "timer name")
		t.Pos = p.pos(f["name"])
	}
	if f["doc"] != nil {
		t.Doc = p.scalar(f["doc"], "doc")
	}
	if f["duration"] == nil {
		p.errorf(n, "timer %q has no \"duration\"; name the duration parameter the host supplies, e.g. \"duration: timeout\"", t.Name)
	} else {
		t.Duration = p.name(f["duration"], "timer duration")
	}
	if f["event"] == nil {
		p.errorf(n, "timer %q has no \"event\"; name the timer event it raises on expiry", t.Name)
	} else {
		t.Event = p.scalar(f["event"], "timer event")
		t.eventNode = f["event"]
	}
	return t
}

// rawActions reads an action list; names are resolved later.
func (p *parser) rawActions(n *yaml.Node, what string) []Action {
	if n == nil {
		return nil
	}
	names, nodes := p.names(n, what)
	out := make([]Action, 0, len(names))
	for i, v := range names {
		a := Action{Kind: ActionCall, Name: v, Pos: p.pos(nodes[i])}
		fields := strings.Fields(v)
		switch {
		case len(fields) == 2 && fields[0] == "start":
			a.Kind, a.Name = ActionStartTimer, fields[1]
		case len(fields) == 2 && fields[0] == "stop":
			a.Kind, a.Name = ActionStopTimer, fields[1]
		case len(fields) != 1 || !identRE.MatchString(v):
			p.errorf(nodes[i], "action %q is not a name, \"start TIMER\" or \"stop TIMER\"; use letters, digits, '-' and '_'", v)
			continue
		}
		out = append(out, a)
	}
	return out
}

func (p *parser) transition(n *yaml.Node, r *resolver) []*Transition {
	t := &Transition{Pos: p.pos(n)}
	f := p.mapping(n, "transition", transitionKeys)
	if f == nil {
		return nil
	}
	if f["from"] == nil {
		p.errorf(n, "transition has no \"from\"; add \"from: STATE\" (a state, a list of states or a group)")
	} else {
		t.From, t.FromText = r.stateSet(f["from"], "from")
	}
	var events []string
	var eventNodes []*yaml.Node
	if f["on"] == nil {
		p.errorf(n, "transition has no \"on\"; add \"on: EVENT\" naming the event that triggers it")
	} else {
		names, nodes := p.names(f["on"], "on")
		for i := range names {
			if e := r.event(nodes[i], "on"); e != "" {
				events = append(events, e)
				eventNodes = append(eventNodes, nodes[i])
			}
		}
	}
	if g := f["guard"]; g != nil {
		t.Guard = p.guard(g)
	}
	if to := f["to"]; to != nil {
		t.To = r.state(to, "to")
		t.ToPos = p.pos(to)
	}
	t.Actions = r.actions(p.rawActions(f["actions"], "actions"))
	if f["label"] != nil {
		t.Label = p.scalar(f["label"], "label")
	}
	if f["doc"] != nil {
		t.Doc = p.scalar(f["doc"], "doc")
	}
	out := make([]*Transition, 0, len(events))
	for i, e := range events {
		c := *t
		c.On, c.OnPos = e, p.pos(eventNodes[i])
		if len(events) > 1 {
			c.Pos = c.OnPos // tell the copies apart in messages
		}
		out = append(out, &c)
	}
	return out
}

// guard reads "name", "!name", "a && !b" or a list of terms (a conjunction).
func (p *parser) guard(n *yaml.Node) []GuardTerm {
	var terms []string
	var nodes []*yaml.Node
	if n.Kind == yaml.SequenceNode {
		terms, nodes = p.names(n, "guard")
	} else {
		v := p.scalar(n, "guard")
		for _, part := range strings.Split(v, "&&") {
			terms = append(terms, part)
			nodes = append(nodes, n)
		}
	}
	var out []GuardTerm
	for i, raw := range terms {
		v := strings.TrimSpace(raw)
		g := GuardTerm{Pos: p.pos(nodes[i])}
		if strings.HasPrefix(v, "!") {
			g.Negated = true
			v = strings.TrimSpace(v[1:])
		}
		if !identRE.MatchString(v) {
			p.errorf(nodes[i], "guard %q is not a guard name or \"!name\"; combine terms with \"&&\" or a list", strings.TrimSpace(raw))
			continue
		}
		g.Name = v
		out = append(out, g)
	}
	return out
}

func (p *parser) rule(n *yaml.Node, r *resolver, kind string) *Rule {
	ig := &Rule{Pos: p.pos(n)}
	f := p.mapping(n, kind+" rule", ruleKeys)
	if f == nil {
		return nil
	}
	if f["in"] == nil {
		p.errorf(n, "%s rule has no \"in\"; name the states (a state, list or group) it applies to", kind)
	} else {
		ig.In, _ = r.stateSet(f["in"], "in")
	}
	if f["on"] == nil {
		p.errorf(n, "%s rule has no \"on\"; name the event or events", kind)
	} else {
		names, nodes := p.names(f["on"], "on")
		for i := range names {
			if e := r.event(nodes[i], "on"); e != "" {
				ig.On = append(ig.On, e)
			}
		}
	}
	if f["doc"] != nil {
		ig.Doc = p.scalar(f["doc"], "doc")
	}
	return ig
}

func (p *parser) message(n *yaml.Node, r *resolver) *Message {
	msg := &Message{Pos: p.pos(n)}
	f := p.mapping(n, "message", messageKeys)
	if f == nil {
		return nil
	}
	if f["name"] == nil {
		p.errorf(n, "message has no \"name\"; add \"name: MESSAGE\"")
	} else {
		msg.Name = p.name(f["name"], "message name")
	}
	if f["sent"] == nil {
		p.errorf(n, "message %q has no \"sent\"; list the actions that emit it", msg.Name)
	} else {
		names, nodes := p.names(f["sent"], "sent")
		for i, a := range names {
			r.actionRefs = append(r.actionRefs, actionRef{a, nodes[i]})
		}
		msg.Sent = names
	}
	if f["event"] == nil {
		p.errorf(n, "message %q has no \"event\"; name the event its arrival raises", msg.Name)
	} else {
		msg.Event = r.event(f["event"], "event")
	}
	p.messageExt(f, msg, r, &p.vx)
	return msg
}

func (p *parser) property(n *yaml.Node, r *resolver) *Property {
	pr := &Property{Pos: p.pos(n), Kind: "always-reaches"}
	f := p.mapping(n, "property", propertyKeys)
	if f == nil {
		return nil
	}
	if f["name"] == nil {
		p.errorf(n, "property has no \"name\"; add \"name: NAME\"")
	} else {
		pr.Name = p.name(f["name"], "property name")
	}
	if f["doc"] != nil {
		pr.Doc = p.scalar(f["doc"], "doc")
	}
	if k := f["kind"]; k != nil {
		switch v := p.scalar(k, "kind"); v {
		case "reachable", "always-reaches":
			pr.Kind = v
		default:
			p.errorf(k, "unknown property kind %q; use reachable or always-reaches", v)
		}
	}
	pair := func(key string) [2]string {
		var out [2]string
		n := f[key]
		if n == nil {
			return out
		}
		if n.Kind != yaml.SequenceNode || len(n.Content) != 2 {
			p.errorf(n, "%s must be a pair of states [PEER_A, PEER_B]", key)
			return out
		}
		out[0] = r.state(n.Content[0], key)
		out[1] = r.state(n.Content[1], key)
		return out
	}
	pr.From = pair("from")
	if f["goal"] == nil {
		p.errorf(n, "property %q has no \"goal\"; give the pair of states to reach, e.g. [CLOSED, CLOSED]", pr.Name)
	}
	pr.Goal = pair("goal")
	if u := f["users"]; u != nil {
		names, nodes := p.names(u, "users")
		for i := range names {
			if e := r.event(nodes[i], "users"); e != "" {
				pr.Users = append(pr.Users, e)
			}
		}
	}
	p.propertyExt(f, pr, r)
	return pr
}

// checkNames reports duplicate and clashing declarations.
func (p *parser) checkNames(m *Machine) {
	seen := map[string]Pos{}
	dup := func(kind, name string, pos Pos) {
		if name == "" {
			return
		}
		key := kind + "\x00" + name
		if prev, ok := seen[key]; ok {
			p.errs.add(pos, "duplicate %s %q (first declared at %s); rename or remove one", kind, name, prev)
			return
		}
		seen[key] = pos
	}
	for _, s := range m.States {
		dup("state", s.Name, s.Pos)
	}
	for _, e := range m.Events {
		dup("event", e.Name, e.Pos)
	}
	for _, t := range m.Timers {
		dup("timer", t.Name, t.Pos)
	}
	for _, g := range m.Groups {
		dup("group", g.Name, g.Pos)
		if m.StateByName(g.Name) != nil {
			p.errs.add(g.Pos, "group %q has the name of a state; rename the group", g.Name)
		}
	}
}
