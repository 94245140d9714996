module github.com/fsmgen/fsmgen/tests/peers

go 1.26.8

replace github.com/fsmgen/fsmgen => ../..

require (
	github.com/fsmgen/fsmgen v0.0.0
	gvisor.dev/gvisor v0.0.0-20250523182742-eede7a881b20
)

require (
	github.com/google/btree v1.1.2 // indirect
	golang.org/x/sys v0.38.0 // indirect
	golang.org/x/time v0.7.0 // indirect
)
