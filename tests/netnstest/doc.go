// Package netnstest builds throwaway network topologies for tests: two fresh
// network namespaces joined by a veth pair addressed from 10.201.0.0/16, plus
// helpers to run code inside a namespace, add TUN devices and install
// nftables rules. Everything a Topology creates is removed by t.Cleanup, even
// when the test fails. It needs root (see RequireRoot) but no external
// binary: namespaces, links and addresses are made through netlink
// (vishvananda/netlink), firewall rules through nf_tables netlink
// (google/nftables), offloads through the ethtool ioctl.
//
// Namespaces and goroutines: a network namespace belongs to an OS thread,
// not to a goroutine. NS.Do locks the calling goroutine to its thread,
// switches the thread into the namespace, runs the function and switches
// back. Goroutines started inside Do do NOT run in the namespace. A socket
// (or TUN device) keeps the namespace it was created in for its whole life,
// so the usual pattern is to create listeners, dialers' connections and
// links inside Do and use them anywhere afterwards. Sockets keep their
// namespace alive: close them (t.Cleanup registered after New runs first)
// or the namespace lingers after its name is deleted.
//
// Addresses: each Topology gets a number N in [1, 126], unique among the
// topologies alive on the machine (a lock file serializes the choice across
// test processes); the veth is 10.201.N.1/24 (namespace A) and 10.201.N.2/24
// (namespace B); AuxPrefix gives 10.201.(N+128).0/24 for a TUN or similar.
// Namespaces are named "fsmt-<random>-n<N>-p<pid>-a" and "...-b"; those left
// behind by a killed test process are reaped by the next New.
package netnstest
