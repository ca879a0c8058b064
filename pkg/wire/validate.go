package wire

import (
	"encoding/binary"
	"fmt"
)

// MaxDepth bounds the nesting of arrays and maps in a message.
const MaxDepth = 16

// maxElements bounds the total number of array elements and map keys and
// values in a message. Bounding each container by the bytes that remain is
// not enough: an element takes one byte on the wire (nil) but up to 64 bytes
// once decoded (a []CompilerInfo element, with slice growth), so a 64 MiB
// frame of nils would make the decoder allocate gigabytes. No message
// carries anywhere near this many elements.
const maxElements = 1 << 16

// Validate walks one msgpack value that must fill body exactly and checks,
// before any decoder allocates, that every declared string, binary or
// container length fits in the bytes that remain, that nesting stays within
// MaxDepth, that the message holds at most maxElements array and map
// elements in all, and that no extension types appear. A container's element count
// is bounded by the remaining bytes because every element takes at least
// one byte, so an element count of 2^31 in a 20-byte frame is refused here.
func Validate(body []byte) error {
	var stack [MaxDepth]uint64
	depth := 0
	need := uint64(1)
	total := uint64(0)
	i := 0
	for {
		for need == 0 {
			if depth == 0 {
				if i != len(body) {
					return fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(body)-i)
				}
				return nil
			}
			depth--
			need = stack[depth]
		}
		if i >= len(body) {
			return fmt.Errorf("%w: truncated at byte %d", ErrMalformed, i)
		}
		c := body[i]
		i++
		need--
		rest := uint64(len(body) - i)
		var items, skip uint64
		var lenBytes int
		switch {
		case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
			// fixint, nil, bool
		case c >= 0x80 && c <= 0x8f:
			items = 2 * uint64(c&0x0f)
		case c >= 0x90 && c <= 0x9f:
			items = uint64(c & 0x0f)
		case c >= 0xa0 && c <= 0xbf:
			skip = uint64(c & 0x1f)
		case c == 0xc4 || c == 0xd9: // bin8, str8
			lenBytes = 1
		case c == 0xc5 || c == 0xda: // bin16, str16
			lenBytes = 2
		case c == 0xc6 || c == 0xdb: // bin32, str32
			lenBytes = 4
		case c == 0xcc || c == 0xd0:
			skip = 1
		case c == 0xcd || c == 0xd1:
			skip = 2
		case c == 0xce || c == 0xd2 || c == 0xca:
			skip = 4
		case c == 0xcf || c == 0xd3 || c == 0xcb:
			skip = 8
		case c == 0xdc || c == 0xde: // array16, map16
			if rest < 2 {
				return fmt.Errorf("%w: truncated length at byte %d", ErrMalformed, i)
			}
			items = uint64(binary.BigEndian.Uint16(body[i:]))
			i += 2
			if c == 0xde {
				items *= 2
			}
		case c == 0xdd || c == 0xdf: // array32, map32
			if rest < 4 {
				return fmt.Errorf("%w: truncated length at byte %d", ErrMalformed, i)
			}
			items = uint64(binary.BigEndian.Uint32(body[i:]))
			i += 4
			if c == 0xdf {
				items *= 2
			}
		default: // 0xc1 (never used) and every extension type
			return fmt.Errorf("%w: unsupported msgpack code 0x%02x at byte %d", ErrMalformed, c, i-1)
		}
		if lenBytes > 0 {
			if rest < uint64(lenBytes) {
				return fmt.Errorf("%w: truncated length at byte %d", ErrMalformed, i)
			}
			switch lenBytes {
			case 1:
				skip = uint64(body[i])
			case 2:
				skip = uint64(binary.BigEndian.Uint16(body[i:]))
			case 4:
				skip = uint64(binary.BigEndian.Uint32(body[i:]))
			}
			i += lenBytes
		}
		rest = uint64(len(body) - i)
		if skip > rest {
			return fmt.Errorf("%w: value declares %d bytes, %d remain", ErrMalformed, skip, rest)
		}
		i += int(skip)
		if items > 0 {
			if items > rest {
				return fmt.Errorf("%w: container declares %d elements, %d bytes remain", ErrMalformed, items, rest)
			}
			if total += items; total > maxElements {
				return fmt.Errorf("%w: more than %d elements in a message", ErrMalformed, maxElements)
			}
			if depth == MaxDepth {
				return fmt.Errorf("%w: nesting deeper than %d", ErrMalformed, MaxDepth)
			}
			stack[depth] = need
			depth++
			need = items
		}
	}
}
