package wire

import (
	"encoding/binary"

	"github.com/fsmgen/fsmgen/runtime/seqnum"
)

// TCP option kinds (RFC 9293 §3.2; RFC 7323 §2.2, §3.2; RFC 2018 §2, §3).
const (
	OptEOL           = 0 // End of Option List (RFC 9293 §3.2).
	OptNOP           = 1 // No-Operation (RFC 9293 §3.2).
	OptMSS           = 2 // Maximum Segment Size, length 4 (RFC 9293 §3.2).
	OptWScale        = 3 // Window Scale, length 3 (RFC 7323 §2.2).
	OptSACKPermitted = 4 // SACK-Permitted, length 2 (RFC 2018 §2).
	OptSACK          = 5 // SACK, length 2+8n (RFC 2018 §3).
	OptTimestamps    = 8 // Timestamps, length 10 (RFC 7323 §3.2).
)

const (
	// MaxOptionsLen is the largest TCP option area: a 15-word data offset
	// minus the 5-word fixed header (RFC 9293 §3.1).
	MaxOptionsLen = 40
	// MaxSACKBlocks is the most SACK blocks one option can carry in 40
	// bytes (RFC 2018 §3).
	MaxSACKBlocks = 4
	// MaxWScale is the largest window shift count; larger received values
	// are used as 14 (RFC 7323 §2.3).
	MaxWScale = 14
)

// SACKBlock is one SACK block: the received range [Start, End) of sequence
// space (RFC 2018 §3: Left Edge, Right Edge).
type SACKBlock struct {
	// Start is the first sequence number of the block (Left Edge).
	Start seqnum.Value
	// End is the sequence number just past the block (Right Edge).
	End seqnum.Value
}

// Options holds the TCP options the runtime understands. It contains no
// pointers or slices, so it is copied and zeroed without allocation. A field
// is meaningful only when its Has flag (or count) says the option is present.
type Options struct {
	// MSS is the Maximum Segment Size option value (RFC 9293 §3.2, §3.7.1);
	// valid when HasMSS. RFC 9293 MUST-65 allows it only on SYN segments;
	// Parse reports it wherever it appears and leaves that rule to the stack.
	MSS uint16
	// HasMSS reports that the MSS option is present.
	HasMSS bool
	// WScale is the Window Scale shift count (RFC 7323 §2.2); valid when
	// HasWScale. Parse clamps it to MaxWScale (RFC 7323 §2.3), and so does
	// Encode.
	WScale uint8
	// HasWScale reports that the Window Scale option is present.
	HasWScale bool
	// SACKPermitted reports the SACK-Permitted option (RFC 2018 §2).
	SACKPermitted bool
	// HasTS reports that the Timestamps option is present (RFC 7323 §3.2).
	HasTS bool
	// TSVal is the timestamp value (RFC 7323 §3.2); valid when HasTS.
	TSVal uint32
	// TSEcr is the timestamp echo reply (RFC 7323 §3.2); valid when HasTS.
	TSEcr uint32
	// SACKBlocks holds the SACK option's blocks in the order sent, most
	// recent first (RFC 2018 §4); only the first NumSACKBlocks are valid.
	SACKBlocks [MaxSACKBlocks]SACKBlock
	// NumSACKBlocks is how many entries of SACKBlocks are valid (0–4); zero
	// means no SACK option.
	NumSACKBlocks uint8
}

// SACK returns the valid SACK blocks. The slice aliases o.
func (o *Options) SACK() []SACKBlock {
	return o.SACKBlocks[:min(int(o.NumSACKBlocks), MaxSACKBlocks)]
}

// AddSACK appends a SACK block and reports whether there was room for it.
func (o *Options) AddSACK(b SACKBlock) bool {
	if o.NumSACKBlocks >= MaxSACKBlocks {
		return false
	}
	o.SACKBlocks[o.NumSACKBlocks] = b
	o.NumSACKBlocks++
	return true
}

// parseOptions decodes the TCP option area b into o, which must be zero on
// entry. It reports false on an illegal option length (RFC 9293 MUST-7).
// Unknown kinds with a valid length are skipped (RFC 9293 MUST-6); options may
// start at any byte (MUST-64); a repeated option overrides earlier ones.
func parseOptions(b []byte, o *Options) bool {
	for i := 0; i < len(b); {
		kind := b[i]
		switch kind {
		case OptEOL:
			// End of list; the rest is padding (RFC 9293 §3.2).
			return true
		case OptNOP:
			i++
			continue
		}
		// Every other kind carries a length that counts kind and length
		// octets (RFC 9293 §3.1, MUST-68).
		if i+1 >= len(b) {
			return false
		}
		l := int(b[i+1])
		if l < 2 || l > len(b)-i {
			return false
		}
		data := b[i+2 : i+l]
		switch kind {
		case OptMSS:
			if l != 4 {
				return false
			}
			o.MSS = binary.BigEndian.Uint16(data)
			o.HasMSS = true
		case OptWScale:
			if l != 3 {
				return false
			}
			o.WScale = min(data[0], MaxWScale) // RFC 7323 §2.3
			o.HasWScale = true
		case OptSACKPermitted:
			if l != 2 {
				return false
			}
			o.SACKPermitted = true
		case OptSACK:
			// RFC 2018 §3: 2 + 8n octets, n >= 1; 40 bytes bound n <= 4.
			n := (l - 2) / 8
			if n == 0 || (l-2)%8 != 0 || n > MaxSACKBlocks {
				return false
			}
			for j := range n {
				o.SACKBlocks[j] = SACKBlock{
					Start: seqnum.Value(binary.BigEndian.Uint32(data[8*j:])),
					End:   seqnum.Value(binary.BigEndian.Uint32(data[8*j+4:])),
				}
			}
			o.NumSACKBlocks = uint8(n)
		case OptTimestamps:
			if l != 10 {
				return false
			}
			o.TSVal = binary.BigEndian.Uint32(data[0:4])
			o.TSEcr = binary.BigEndian.Uint32(data[4:8])
			o.HasTS = true
		}
		i += l
	}
	return true
}

// optLayout is how Encode lays out a set of options.
type optLayout struct {
	size    int  // bytes, a multiple of 4, at most MaxOptionsLen
	compact bool // no NOP alignment; zero padding at the end
	nsack   int  // SACK blocks written
}

// alignedLen is the option size in Linux's word-aligned layout (see
// writeAligned) with n SACK blocks.
func (o *Options) alignedLen(n int) int {
	size := 0
	if o.HasMSS {
		size += 4
	}
	if o.HasTS {
		size += 12 // SACK-Permitted, if any, shares this word pair
	} else if o.SACKPermitted {
		size += 4
	}
	if o.HasWScale {
		size += 4
	}
	if n > 0 {
		size += 4 + 8*n
	}
	return size
}

// compactLen is the option size with no alignment NOPs and n SACK blocks,
// rounded up to a multiple of 4.
func (o *Options) compactLen(n int) int {
	size := 0
	if o.HasMSS {
		size += 4
	}
	if o.HasTS {
		size += 10
	}
	if o.HasWScale {
		size += 3
	}
	if o.SACKPermitted {
		size += 2
	}
	if n > 0 {
		size += 2 + 8*n
	}
	return (size + 3) &^ 3
}

// layout picks the encoding: Linux's aligned layout when it fits in 40 bytes,
// otherwise the compact one (which always fits options that Parse produced,
// since those fit the sender's 40 bytes). When neither fits, trailing SACK
// blocks are dropped until one does, as Linux does (RFC 2018 §4: the first
// block is the most recent and matters most).
func (o *Options) layout() optLayout {
	for n := min(int(o.NumSACKBlocks), MaxSACKBlocks); n > 0; n-- {
		if s := o.alignedLen(n); s <= MaxOptionsLen {
			return optLayout{size: s, nsack: n}
		}
		if s := o.compactLen(n); s <= MaxOptionsLen {
			return optLayout{size: s, compact: true, nsack: n}
		}
	}
	// Without SACK blocks the aligned layout needs at most 20 bytes.
	return optLayout{size: o.alignedLen(0)}
}

// HeaderLen returns the length of the IPv4 and TCP headers, options included,
// that Encode writes for opts (nil means no options): 40 plus the padded
// option length. Encode needs HeaderLen(&s.Options)+len(s.Payload) bytes.
//
// Options are laid out as Linux does, each option's data word-aligned: MSS;
// SACK-Permitted+TS or NOP,NOP,TS; NOP,WS; NOP,NOP,SACK-Permitted (without
// TS); NOP,NOP,SACK. When that exceeds 40 bytes they are packed without NOPs
// and zero-padded (RFC 9293 §3.1, MUST-69), and when even that does not fit,
// trailing SACK blocks are left out.
func HeaderLen(opts *Options) int {
	if opts == nil {
		return IPv4HeaderLen + TCPHeaderLen
	}
	return IPv4HeaderLen + TCPHeaderLen + opts.layout().size
}

// writeOptions writes o into b (len(b) == l.size) using layout l.
func (o *Options) writeOptions(b []byte, l optLayout) {
	if l.compact {
		o.writeCompact(b, l.nsack)
	} else {
		o.writeAligned(b, l.nsack)
	}
}

// writeAligned writes options as Linux does (tcp_options_write), every option
// starting its data on a 4-byte boundary: MSS; SACK-Permitted+TS or NOP,NOP,TS;
// NOP,WS; NOP,NOP,SACK-Permitted (without TS); NOP,NOP,SACK blocks.
func (o *Options) writeAligned(b []byte, nsack int) {
	i := 0
	if o.HasMSS {
		b[i], b[i+1] = OptMSS, 4
		binary.BigEndian.PutUint16(b[i+2:], o.MSS)
		i += 4
	}
	if o.HasTS {
		if o.SACKPermitted {
			b[i], b[i+1] = OptSACKPermitted, 2
		} else {
			b[i], b[i+1] = OptNOP, OptNOP
		}
		b[i+2], b[i+3] = OptTimestamps, 10
		binary.BigEndian.PutUint32(b[i+4:], o.TSVal)
		binary.BigEndian.PutUint32(b[i+8:], o.TSEcr)
		i += 12
	} else if o.SACKPermitted {
		b[i], b[i+1], b[i+2], b[i+3] = OptNOP, OptNOP, OptSACKPermitted, 2
		i += 4
	}
	if o.HasWScale {
		b[i], b[i+1], b[i+2], b[i+3] = OptNOP, OptWScale, 3, min(o.WScale, MaxWScale)
		i += 4
	}
	if nsack > 0 {
		b[i], b[i+1], b[i+2], b[i+3] = OptNOP, OptNOP, OptSACK, byte(2+8*nsack)
		i += 4
		i = o.writeSACKBlocks(b, i, nsack)
	}
}

// writeCompact writes options back to back and pads with zeros (EOL then
// padding, RFC 9293 §3.1 MUST-69).
func (o *Options) writeCompact(b []byte, nsack int) {
	i := 0
	if o.HasMSS {
		b[i], b[i+1] = OptMSS, 4
		binary.BigEndian.PutUint16(b[i+2:], o.MSS)
		i += 4
	}
	if o.HasTS {
		b[i], b[i+1] = OptTimestamps, 10
		binary.BigEndian.PutUint32(b[i+2:], o.TSVal)
		binary.BigEndian.PutUint32(b[i+6:], o.TSEcr)
		i += 10
	}
	if o.HasWScale {
		b[i], b[i+1], b[i+2] = OptWScale, 3, min(o.WScale, MaxWScale)
		i += 3
	}
	if o.SACKPermitted {
		b[i], b[i+1] = OptSACKPermitted, 2
		i += 2
	}
	if nsack > 0 {
		b[i], b[i+1] = OptSACK, byte(2+8*nsack)
		i = o.writeSACKBlocks(b, i+2, nsack)
	}
	clear(b[i:])
}

// writeSACKBlocks writes the first n blocks at b[i:] and returns the new end.
func (o *Options) writeSACKBlocks(b []byte, i, n int) int {
	for _, blk := range o.SACKBlocks[:n] {
		binary.BigEndian.PutUint32(b[i:], uint32(blk.Start))
		binary.BigEndian.PutUint32(b[i+4:], uint32(blk.End))
		i += 8
	}
	return i
}
