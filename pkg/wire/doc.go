// Package wire owns every byte that crosses the network between dcc clients,
// the local agent, the broker and volunteers: length-prefixed frames, the
// msgpack message types carried in them, and the challenge–response
// handshake that opens every connection.
//
// It is the only package that parses bytes from the network. Every read is
// bounded: a frame declares its length in a 4-byte big-endian prefix and is
// refused when that length exceeds the cap the reader chose for the stream;
// the frame body is read with io.ReadFull into a buffer and structurally
// validated (declared lengths against remaining bytes, nesting depth) before
// the msgpack decoder sees it, so a few hostile bytes can never make the
// process allocate more than the frame cap. See docs/protocol.md.
package wire
