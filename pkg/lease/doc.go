// Package lease owns the broker's lease table: granting a slot on a host to
// a user, renewing it, releasing it, expiring it and revoking it when its
// holder or its host goes away; and the signed tokens that let a volunteer
// check a job's lease without asking the broker.
//
// Nothing here reads the wall clock, starts goroutines or touches sockets:
// every operation takes "now" from its caller, so the broker, the simulator
// and tests drive the same code.
package lease
