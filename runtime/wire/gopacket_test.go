package wire

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"

	"github.com/fsmgen/fsmgen/runtime/seqnum"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"pgregory.net/rapid"
)

// optionsFromGopacket converts gopacket's decoded option list into Options
// with the same rules Parse applies.
func optionsFromGopacket(t *rapid.T, opts []layers.TCPOption) Options {
	var o Options
	for _, opt := range opts {
		d := opt.OptionData
		switch opt.OptionType {
		case layers.TCPOptionKindEndList:
			return o
		case layers.TCPOptionKindNop:
		case layers.TCPOptionKindMSS:
			o.HasMSS, o.MSS = true, binary.BigEndian.Uint16(d)
		case layers.TCPOptionKindWindowScale:
			o.HasWScale, o.WScale = true, min(d[0], MaxWScale)
		case layers.TCPOptionKindSACKPermitted:
			o.SACKPermitted = true
		case layers.TCPOptionKindTimestamps:
			o.HasTS, o.TSVal, o.TSEcr = true, binary.BigEndian.Uint32(d), binary.BigEndian.Uint32(d[4:])
		case layers.TCPOptionKindSACK:
			o.NumSACKBlocks = uint8(len(d) / 8)
			for i := range len(d) / 8 {
				o.SACKBlocks[i] = SACKBlock{
					Start: seqnum.Value(binary.BigEndian.Uint32(d[8*i:])),
					End:   seqnum.Value(binary.BigEndian.Uint32(d[8*i+4:])),
				}
			}
		default:
			t.Fatalf("unexpected option kind %d", opt.OptionType)
		}
	}
	return o
}

// TestEncodeDecodedByGopacket encodes random segments and checks gopacket's
// view of them field by field; then has gopacket re-serialize its decoded
// layers with fresh checksums, which must reproduce our bytes exactly, so
// both checksums agree with an independent implementation.
func TestEncodeDecodedByGopacket(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := drawSegment(t)
		want := wantAfterEncode(s)
		buf := mustEncode(t, &s)
		p := gopacket.NewPacket(buf, layers.LayerTypeIPv4, gopacket.Default)
		if el := p.ErrorLayer(); el != nil {
			t.Fatalf("gopacket: %v", el.Error())
		}
		ip := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		tcp := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if ip.Version != 4 || ip.IHL != 5 || int(ip.Length) != len(buf) || ip.Flags != layers.IPv4DontFragment ||
			ip.FragOffset != 0 || ip.TTL != want.TTL || ip.TOS != s.TOS || ip.Protocol != layers.IPProtocolTCP ||
			!ip.SrcIP.Equal(net.IP(s.Src[:])) || !ip.DstIP.Equal(net.IP(s.Dst[:])) {
			t.Fatalf("IPv4 header mismatch: %+v", ip)
		}
		f := s.Flags
		if uint16(tcp.SrcPort) != s.SrcPort || uint16(tcp.DstPort) != s.DstPort || tcp.Seq != uint32(s.Seq) ||
			tcp.Ack != uint32(s.Ack) || tcp.Window != s.Window || tcp.Urgent != s.Urgent ||
			tcp.FIN != f.Has(FIN) || tcp.SYN != f.Has(SYN) || tcp.RST != f.Has(RST) || tcp.PSH != f.Has(PSH) ||
			tcp.ACK != f.Has(ACK) || tcp.URG != f.Has(URG) || tcp.ECE != f.Has(ECE) || tcp.CWR != f.Has(CWR) || tcp.NS {
			t.Fatalf("TCP header mismatch: %+v", tcp)
		}
		if got := optionsFromGopacket(t, tcp.Options); got != want.Options {
			t.Fatalf("options: gopacket sees %+v, want %+v", got, want.Options)
		}
		if !bytes.Equal(tcp.Payload, s.Payload) {
			t.Fatalf("payload mismatch")
		}

		tcp.SetNetworkLayerForChecksum(ip)
		sb := gopacket.NewSerializeBuffer()
		err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{ComputeChecksums: true}, ip, tcp, gopacket.Payload(tcp.Payload))
		if err != nil {
			t.Fatalf("gopacket serialize: %v", err)
		}
		if !bytes.Equal(sb.Bytes(), buf) {
			t.Fatalf("gopacket re-serialization differs\nours %x\ngpkt %x", buf, sb.Bytes())
		}
	})
}

// TestParseGopacketEncoded has gopacket build packets, with options in
// random order and random NOP padding, and parses them.
func TestParseGopacketEncoded(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := drawSegment(t)
		s.TTL = max(s.TTL, 1)
		s.Options.WScale = min(s.Options.WScale, MaxWScale)
		o := &s.Options

		var opts []layers.TCPOption
		add := func(kind layers.TCPOptionKind, data []byte) {
			opts = append(opts, layers.TCPOption{OptionType: kind, OptionLength: uint8(2 + len(data)), OptionData: data})
		}
		if o.HasMSS {
			add(layers.TCPOptionKindMSS, binary.BigEndian.AppendUint16(nil, o.MSS))
		}
		if o.HasWScale {
			add(layers.TCPOptionKindWindowScale, []byte{o.WScale})
		}
		if o.SACKPermitted {
			add(layers.TCPOptionKindSACKPermitted, nil)
		}
		if o.HasTS {
			add(layers.TCPOptionKindTimestamps, binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, o.TSVal), o.TSEcr))
		}
		if o.NumSACKBlocks > 0 {
			var d []byte
			for _, b := range o.SACK() {
				d = binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(d, uint32(b.Start)), uint32(b.End))
			}
			add(layers.TCPOptionKindSACK, d)
		}
		opts = rapid.Permutation(opts).Draw(t, "order")
		var withNOPs []layers.TCPOption
		size := 0
		for _, opt := range opts {
			for range rapid.IntRange(0, 2).Draw(t, "nops") {
				withNOPs = append(withNOPs, layers.TCPOption{OptionType: layers.TCPOptionKindNop})
				size++
			}
			withNOPs = append(withNOPs, opt)
			size += int(opt.OptionLength)
		}
		if size > MaxOptionsLen {
			t.Skip("options do not fit in 40 bytes")
		}

		ipFlags := layers.IPv4Flag(0)
		if rapid.Bool().Draw(t, "df") {
			ipFlags = layers.IPv4DontFragment
		}
		ip := &layers.IPv4{
			Version: 4, TOS: s.TOS, Id: rapid.Uint16().Draw(t, "id"), Flags: ipFlags, TTL: s.TTL,
			Protocol: layers.IPProtocolTCP, SrcIP: net.IP(s.Src[:]), DstIP: net.IP(s.Dst[:]),
		}
		f := s.Flags
		tcp := &layers.TCP{
			SrcPort: layers.TCPPort(s.SrcPort), DstPort: layers.TCPPort(s.DstPort),
			Seq: uint32(s.Seq), Ack: uint32(s.Ack), Window: s.Window, Urgent: s.Urgent,
			FIN: f.Has(FIN), SYN: f.Has(SYN), RST: f.Has(RST), PSH: f.Has(PSH),
			ACK: f.Has(ACK), URG: f.Has(URG), ECE: f.Has(ECE), CWR: f.Has(CWR),
			Options: withNOPs,
		}
		if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
		sb := gopacket.NewSerializeBuffer()
		err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
			ip, tcp, gopacket.Payload(s.Payload))
		if err != nil {
			t.Fatalf("gopacket serialize: %v", err)
		}
		var got Segment
		if err := Parse(sb.Bytes(), &got); err != nil {
			t.Fatalf("Parse(gopacket packet): %v\n%x", err, sb.Bytes())
		}
		if !sameHeader(got, s) || !bytes.Equal(got.Payload, s.Payload) {
			t.Fatalf("mismatch\n got %+v\nwant %+v", got, s)
		}
	})
}
