package wire

// Flags holds the TCP control bits: byte 13 of the TCP header (RFC 9293
// §3.1, plus ECE and CWR from RFC 3168 §6.1).
type Flags uint8

// TCP control bits, in header bit order (RFC 9293 §3.1; RFC 3168 §6.1).
const (
	FIN Flags = 1 << iota // FIN: no more data from sender.
	SYN                   // SYN: synchronize sequence numbers.
	RST                   // RST: reset the connection.
	PSH                   // PSH: push function.
	ACK                   // ACK: the acknowledgment field is significant.
	URG                   // URG: the urgent pointer field is significant.
	ECE                   // ECE: ECN-Echo (RFC 3168).
	CWR                   // CWR: congestion window reduced (RFC 3168).
)

var flagNames = [8]string{"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"}

// Has reports whether every bit of want is set in f.
func (f Flags) Has(want Flags) bool { return f&want == want }

// String returns the set bits joined by "|" in header bit order, for example
// "SYN|ACK" or "FIN|PSH|ACK", and "none" when no bit is set. It allocates; it
// is meant for logs and tests, not the hot path.
func (f Flags) String() string {
	if f == 0 {
		return "none"
	}
	var buf [8 * 4]byte
	n := 0
	for i, name := range flagNames {
		if f&(1<<i) == 0 {
			continue
		}
		if n > 0 {
			buf[n] = '|'
			n++
		}
		n += copy(buf[n:], name)
	}
	return string(buf[:n])
}
