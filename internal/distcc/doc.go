// Package distcc is a client for stock distccd hosts (distcc 3.x) speaking
// distcc's protocol 1, so that the farm can lease slots on machines a team
// already runs distccd on, and a parser for distcc's host lists
// (DISTCC_HOSTS, ~/.distcc/hosts) that turns them into farm-file lines.
//
// It owns the protocol-1 bytes end to end: the request (DIST, ARGC, ARGV,
// DOTI), the reply (DONE, STAT, SERR, SOUT, DOTO) and the command line
// distccd expects. Protocol 2 (LZO) and 3 (pump) are not spoken: every
// distccd accepts protocol 1 (src/srvrpc.c takes any version it knows).
//
// A reply is trusted only when every header has the expected token and 8
// lowercase hex digits, every length is within Limits before anything is
// allocated for it, STAT is a real wait status, DOTO agrees with STAT, and
// the stream ends right after DOTO. Anything else is an *Error with
// KindProtocol; no partial or doubtful object is ever returned.
//
// Compile makes one TCP connection per job, as distcc's own client does;
// distccd forks (or hands to a preforked child) per connection and has no
// way to run two jobs on one.
package distcc
