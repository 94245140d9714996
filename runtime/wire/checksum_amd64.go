//go:build !purego

package wire

import "golang.org/x/sys/cpu"

// maxSumAVX2 is the most bytes one sumAVX2 call takes (see its overflow
// bound in checksum_amd64.s).
const maxSumAVX2 = 1 << 20

// useAVX2 selects the vector sum; a variable so tests can compare both.
var useAVX2 = cpu.X86.HasAVX2

// sumAVX2 returns the sum of b's little-endian 16-bit words (not folded).
// len(b) must be a positive multiple of 128, at most maxSumAVX2.
//
//go:noescape
func sumAVX2(b []byte) uint64
