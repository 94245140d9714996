//go:build !amd64 || purego

package wire

const maxSumAVX2 = 1 << 20

// useAVX2 is false where there is no assembly sum.
var useAVX2 = false

func sumAVX2([]byte) uint64 { panic("wire: sumAVX2 without assembly") }
