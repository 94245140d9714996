//go:build !purego

#include "textflag.h"

// func sumAVX2(b []byte) uint64
//
// Sums b as little-endian 16-bit words into 32-bit lanes: each 32-byte
// block is split into the low and high halves of its dwords (VPAND with
// 0x0000ffff, VPSRLD by 16), four independent accumulators hide the add
// latency. len(b) must be a positive multiple of 128 and at most
// maxSumAVX2, so no lane can overflow: each of the 4 accumulators gains at
// most 2*0xffff per 128 bytes, and 4 * (maxSumAVX2/128) * 2*0xffff < 2^32.
TEXT ·sumAVX2(SB), NOSPLIT, $0-32
	MOVQ b_base+0(FP), SI
	MOVQ b_len+8(FP), CX
	VPCMPEQD Y7, Y7, Y7
	VPSRLD $16, Y7, Y7 // 0x0000ffff in every dword
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3

loop:
	VPAND (SI), Y7, Y4
	VPSRLD $16, (SI), Y5
	VPADDD Y4, Y0, Y0
	VPADDD Y5, Y1, Y1
	VPAND 32(SI), Y7, Y4
	VPSRLD $16, 32(SI), Y5
	VPADDD Y4, Y2, Y2
	VPADDD Y5, Y3, Y3
	VPAND 64(SI), Y7, Y4
	VPSRLD $16, 64(SI), Y5
	VPADDD Y4, Y0, Y0
	VPADDD Y5, Y1, Y1
	VPAND 96(SI), Y7, Y4
	VPSRLD $16, 96(SI), Y5
	VPADDD Y4, Y2, Y2
	VPADDD Y5, Y3, Y3
	ADDQ $128, SI
	SUBQ $128, CX
	JNZ loop

	// Every lane is < 2^30: add the accumulators (< 2^32), then widen to
	// 64-bit lanes before the horizontal sum.
	VPADDD Y1, Y0, Y0
	VPADDD Y3, Y2, Y2
	VPADDD Y2, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPMOVZXDQ X0, Y0
	VPMOVZXDQ X1, Y1
	VPADDQ Y1, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPADDQ X1, X0, X0
	VPSHUFD $0x4e, X0, X1
	VPADDQ X1, X0, X0
	VMOVQ X0, AX
	VZEROUPPER
	MOVQ AX, ret+24(FP)
	RET
