// Package peers benchmarks the fsmgen TCP stack (runtime) against gVisor's
// netstack and the kernel's TCP over loopback. It is a separate module so
// that users of fsmgen never inherit gVisor.
package peers
