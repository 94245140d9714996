//go:build linux

package netnstest

import (
	"encoding/binary"
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/fsmgen/fsmgen/runtime/link/rawlink"
)

// NftTable is the nftables table (family inet) holding this package's rules.
const NftTable = "fsmtcp"

var fsmtcp = &nftables.Table{Family: nftables.TableFamilyINet, Name: NftTable}

func (ns *NS) nft() (*nftables.Conn, error) {
	c, err := nftables.New(nftables.WithNetNSFd(int(ns.h)))
	if err != nil {
		return nil, fmt.Errorf("netnstest: nftables in %s: %w", ns.Name, err)
	}
	return c, nil
}

func (ns *NS) chain(c *nftables.Conn, name string, hook *nftables.ChainHook) *nftables.Chain {
	accept := nftables.ChainPolicyAccept
	c.AddTable(fsmtcp)
	return c.AddChain(&nftables.Chain{
		Name:     name,
		Table:    fsmtcp,
		Type:     nftables.ChainTypeFilter,
		Hooknum:  hook,
		Priority: nftables.ChainPriorityFilter,
		Policy:   &accept,
	})
}

// tcpOnly matches "meta l4proto tcp".
func tcpOnly() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
	}
}

// DropKernelRSTs installs, in table inet fsmtcp, an output-hook chain "out"
// with the rule
//
//	tcp flags rst meta mark != 0x7463 counter drop
//
// so the namespace's kernel no longer answers the user-space stack's
// segments with RSTs, while RSTs sent through rawlink (marked with
// rawlink.Mark) still go out. Idempotent.
func (ns *NS) DropKernelRSTs() error {
	if ns.rstOn {
		return nil
	}
	c, err := ns.nft()
	if err != nil {
		return err
	}
	ch := ns.chain(c, "out", nftables.ChainHookOutput)
	exprs := append(tcpOnly(),
		// tcp flags & rst != 0
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{0x04}, Xor: []byte{0x00}},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{0x00}},
		// meta mark != Mark (the mark register is in host byte order)
		&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(rawlink.Mark)},
		&expr.Counter{},
		&expr.Verdict{Kind: expr.VerdictDrop},
	)
	c.AddRule(&nftables.Rule{Table: fsmtcp, Chain: ch, Exprs: exprs})
	if err := c.Flush(); err != nil {
		return fmt.Errorf("netnstest: DropKernelRSTs in %s: %w", ns.Name, err)
	}
	ns.rstOn = true
	return nil
}

// RandomLoss makes the namespace drop percent % of the TCP packets it
// receives, at random, before local delivery (so both the kernel and raw
// sockets miss them): an input-hook chain "in" in table inet fsmtcp with the
// rule
//
//	meta l4proto tcp numgen random mod 100 < percent counter drop
//
// Each call replaces the previous rate; 0 removes the loss.
func (ns *NS) RandomLoss(percent int) error {
	if percent < 0 || percent > 100 {
		return fmt.Errorf("netnstest: RandomLoss(%d): percent out of [0, 100]", percent)
	}
	c, err := ns.nft()
	if err != nil {
		return err
	}
	ch := ns.chain(c, "in", nftables.ChainHookInput)
	c.FlushChain(ch)
	if percent > 0 {
		var p [4]byte
		binary.BigEndian.PutUint32(p[:], uint32(percent))
		exprs := append(tcpOnly(),
			&expr.Numgen{Register: 1, Modulus: 100, Type: unix.NFT_NG_RANDOM},
			// numgen writes host byte order; cmp lt compares bytes, so
			// convert to big endian first (as nft does).
			&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 4, Size: 4},
			&expr.Cmp{Op: expr.CmpOpLt, Register: 1, Data: p[:]},
			&expr.Counter{},
			&expr.Verdict{Kind: expr.VerdictDrop},
		)
		c.AddRule(&nftables.Rule{Table: fsmtcp, Chain: ch, Exprs: exprs})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("netnstest: RandomLoss in %s: %w", ns.Name, err)
	}
	return nil
}

// Dropped returns how many packets the rules installed by DropKernelRSTs
// (chain "out") and RandomLoss (chain "in") have dropped; 0 for a chain
// that is not installed.
func (ns *NS) Dropped() (kernelRSTs, randomLoss uint64, err error) {
	c, err := ns.nft()
	if err != nil {
		return 0, 0, err
	}
	count := func(name string) (uint64, error) {
		rules, err := c.GetRules(fsmtcp, &nftables.Chain{Name: name, Table: fsmtcp})
		if err != nil {
			return 0, nil // no such table/chain
		}
		var n uint64
		for _, r := range rules {
			for _, e := range r.Exprs {
				if ctr, ok := e.(*expr.Counter); ok {
					n += ctr.Packets
				}
			}
		}
		return n, nil
	}
	if kernelRSTs, err = count("out"); err != nil {
		return 0, 0, err
	}
	randomLoss, err = count("in")
	return kernelRSTs, randomLoss, err
}
