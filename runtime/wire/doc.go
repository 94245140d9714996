// Package wire is the hot-path codec between IPv4 packets carrying TCP and
// the Segment values the TCP runtime works with.
//
// Parse validates a packet (IPv4 header per RFC 791, TCP header, checksum and
// options per RFC 9293 §3.1–3.2) and decodes it into a caller-owned Segment
// without allocating: the payload aliases the packet buffer and failures are
// reported as preallocated *ParseError values carrying a DropReason.
//
// Segment.Encode writes a complete IPv4+TCP packet (both checksums filled)
// into a caller-owned buffer, again without allocating. HeaderLen tells how
// large that buffer must be.
//
// Checksum, PseudoHeaderChecksum, CombineChecksums and UpdateChecksum
// implement the Internet checksum (RFC 1071, RFC 1624) used by both.
package wire
