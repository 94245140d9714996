package wire

import (
	"errors"
	"strconv"
)

// DropReason says why Parse rejected a packet. The zero value, NoDrop, means
// the packet was accepted. Values index arrays of size NumDropReasons, so a
// stack can keep one drop counter per reason.
type DropReason uint8

// Drop reasons, roughly in the order Parse checks them.
const (
	// NoDrop means the packet parsed successfully.
	NoDrop DropReason = iota
	// TooShort: the packet is shorter than a minimal IPv4 header (20 bytes,
	// RFC 791 §3.1), or the IP payload is shorter than a minimal TCP header
	// (20 bytes, RFC 9293 §3.1).
	TooShort
	// BadVersion: the IP version field is not 4 (RFC 791 §3.1).
	BadVersion
	// BadIHL: the IPv4 Internet Header Length is below 5 words (RFC 791 §3.1).
	BadIHL
	// BadTotalLength: the IPv4 total length exceeds the bytes received, or
	// is smaller than the IPv4 header (RFC 791 §3.1).
	BadTotalLength
	// BadIPChecksum: the IPv4 header checksum does not verify (RFC 791 §3.1).
	BadIPChecksum
	// NotTCP: the IPv4 protocol field is not 6, TCP (RFC 9293 §3.1).
	NotTCP
	// Fragment: the packet is an IPv4 fragment (More Fragments set or a
	// nonzero fragment offset, RFC 791 §3.2); fragments are not reassembled.
	Fragment
	// BadDataOffset: the TCP data offset is below 5 words or points past the
	// end of the segment (RFC 9293 §3.1).
	BadDataOffset
	// BadTCPChecksum: the TCP checksum, which covers the pseudo-header,
	// header and data, does not verify (RFC 9293 §3.1, MUST-3).
	BadTCPChecksum
	// BadOption: a TCP option has an illegal length: below 2, running past
	// the option area, or wrong for a known kind (RFC 9293 §3.1, MUST-7).
	BadOption

	// NumDropReasons is the number of DropReason values, NoDrop included.
	NumDropReasons
)

var dropNames = [NumDropReasons]string{
	NoDrop:         "NoDrop",
	TooShort:       "TooShort",
	BadVersion:     "BadVersion",
	BadIHL:         "BadIHL",
	BadTotalLength: "BadTotalLength",
	BadIPChecksum:  "BadIPChecksum",
	NotTCP:         "NotTCP",
	Fragment:       "Fragment",
	BadDataOffset:  "BadDataOffset",
	BadTCPChecksum: "BadTCPChecksum",
	BadOption:      "BadOption",
}

var dropMessages = [NumDropReasons]string{
	NoDrop:         "wire: no error",
	TooShort:       "wire: packet too short",
	BadVersion:     "wire: IP version is not 4",
	BadIHL:         "wire: bad IPv4 header length",
	BadTotalLength: "wire: bad IPv4 total length",
	BadIPChecksum:  "wire: bad IPv4 header checksum",
	NotTCP:         "wire: IP protocol is not TCP",
	Fragment:       "wire: IPv4 fragment",
	BadDataOffset:  "wire: bad TCP data offset",
	BadTCPChecksum: "wire: bad TCP checksum",
	BadOption:      "wire: malformed TCP option",
}

// String returns the constant's name, e.g. "BadTCPChecksum", suitable as a
// metric label.
func (r DropReason) String() string {
	if r < NumDropReasons {
		return dropNames[r]
	}
	return "DropReason(" + strconv.Itoa(int(r)) + ")"
}

// ParseError is the error Parse returns. Parse returns pointers into a static
// table, one per reason, so reporting an error never allocates; compare with
// ReasonOf rather than by pointer identity.
type ParseError struct {
	// Reason says why the packet was dropped; never NoDrop from Parse.
	Reason DropReason
}

// Error describes the reason, e.g. "wire: bad TCP checksum".
func (e *ParseError) Error() string {
	if e.Reason < NumDropReasons {
		return dropMessages[e.Reason]
	}
	return "wire: " + e.Reason.String()
}

var parseErrors = func() (t [NumDropReasons]ParseError) {
	for i := range t {
		t[i].Reason = DropReason(i)
	}
	return t
}()

// errFor returns the static *ParseError for r.
func errFor(r DropReason) error { return &parseErrors[r] }

// ReasonOf returns the DropReason carried by err: the Reason of the first
// *ParseError in err's chain, or NoDrop when err is nil or holds none.
func ReasonOf(err error) DropReason {
	if err == nil {
		return NoDrop
	}
	if pe, ok := err.(*ParseError); ok && pe != nil {
		return pe.Reason
	}
	if pe, ok := errors.AsType[*ParseError](err); ok && pe != nil {
		return pe.Reason
	}
	return NoDrop
}

// Errors returned by Segment.Encode and Segment.Append.
var (
	// ErrShortBuffer: the destination buffer cannot hold the packet; size it
	// with HeaderLen plus the payload length.
	ErrShortBuffer = errors.New("wire: buffer too short for packet")
	// ErrTooLong: the packet would exceed the 65535-byte IPv4 total length
	// limit (RFC 791 §3.1).
	ErrTooLong = errors.New("wire: packet exceeds 65535 bytes")
)
