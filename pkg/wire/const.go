package wire

import (
	"errors"
	"time"
)

// ProtocolVersion is carried in every Hello. A peer speaking another version
// is refused with CodeVersion before anything else is exchanged.
const ProtocolVersion = 2

// Frame size caps. The reader picks the cap for the stream it reads.
const (
	// MaxHandshakeFrame bounds the hello exchange's frames.
	MaxHandshakeFrame = 4 << 10
	// MaxControlFrame bounds lease, status and volunteer control messages.
	MaxControlFrame = 1 << 20
	// MaxJobFrame bounds a job request (preprocessed source) or result (object file).
	MaxJobFrame = 64 << 20
	// MaxStatusFrame bounds a status document.
	MaxStatusFrame = 16 << 20
)

// HeaderSize is the size of a frame header: a 4-byte big-endian length of
// what follows (type byte plus body), then one type byte.
const HeaderSize = 5

// Default I/O deadlines.
const (
	HandshakeTimeout = 5 * time.Second
	ControlTimeout   = 10 * time.Second
)

// Type identifies the message carried in a frame. Values are part of the
// protocol and pinned by a test: never renumber, only append.
type Type uint8

// Message types.
const (
	TypeHello Type = 1
	// 2 and 3 were the challenge and proof of protocol 1's shared-key
	// handshake, retired with it: never reuse them.
	TypeWelcome      Type = 4
	TypeError        Type = 5
	TypeLeaseRequest Type = 10
	TypeLeaseQueued  Type = 11
	TypeLeaseGrant   Type = 12
	TypeLeaseDenied  Type = 13
	TypeLeaseRenew   Type = 14
	TypeLeaseRelease Type = 15
	TypeRegister     Type = 20
	TypeHostStatus   Type = 21
	TypeJobDone      Type = 22
	TypeCommand      Type = 23
	TypeJobRequest   Type = 30
	TypeJobResult    Type = 31
	TypeJobSource    Type = 32
	TypeStatusQuery  Type = 40
	TypeStatusReply  Type = 41
	TypeAdminRequest Type = 42
	TypeAdminReply   Type = 43
	TypeAgentCompile Type = 50
	TypeAgentResult  Type = 51
	TypeAgentPing    Type = 52
	TypeAgentPong    Type = 53
	TypeClientReport Type = 54
	TypeAgentSource  Type = 55
	TypeAgentRecord  Type = 56
	TypeCacheLookup  Type = 60
	TypeCacheAnswer  Type = 61
	TypeCachePut     Type = 62
)

// Error codes carried in an Error message.
const (
	CodeVersion    = 1 // protocol version not supported
	CodeAuth       = 2 // the credential does not allow this
	CodeUnknown    = 3 // unknown host or role
	CodeBadRequest = 4 // malformed or unexpected message
	CodeDenied     = 5 // not allowed
	CodeInternal   = 6 // server-side failure
	CodeBusy       = 7 // no capacity
)

// Sentinel errors.
var (
	// ErrFrameTooLarge is returned when a frame declares a length above the reader's cap.
	ErrFrameTooLarge = errors.New("wire: frame exceeds size cap")
	// ErrMalformed is returned when a frame body is not well-formed msgpack within its bounds.
	ErrMalformed = errors.New("wire: malformed message")
	// ErrUnexpected is returned when a message of another type than expected arrives.
	ErrUnexpected = errors.New("wire: unexpected message type")
	// ErrUnknownType is returned for a type byte this version does not know.
	ErrUnknownType = errors.New("wire: unknown message type")
	// ErrAuth is returned when the peer's credential does not allow what it asks.
	ErrAuth = errors.New("wire: not allowed by the credential")
)
