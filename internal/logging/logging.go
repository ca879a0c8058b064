// Package logging builds the zap loggers every daemon uses: JSON or console
// output at a chosen level, with sampling for ordinary messages and a
// separate never-sampled logger for lease events, so that no grant,
// release, expiry or revocation is ever dropped.
package logging

import (
	"fmt"
	"os"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Loggers is the pair every daemon carries.
type Loggers struct {
	Log   *zap.Logger // ordinary messages, sampled
	Lease *zap.Logger // lease events: never sampled
}

// New returns loggers writing to stderr. format is "json" or "console";
// level is a zap level name (debug, info, warn, error).
func New(format, level string) (Loggers, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return Loggers{}, fmt.Errorf("log level %q: %w", level, err)
	}
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	switch format {
	case "json", "":
		enc = zapcore.NewJSONEncoder(ec)
	case "console":
		ec.EncodeLevel = zapcore.CapitalColorLevelEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	default:
		return Loggers{}, fmt.Errorf("log format %q: want json or console", format)
	}
	out := zapcore.Lock(os.Stderr)
	base := zapcore.NewCore(enc, out, lvl)
	sampled := zapcore.NewSamplerWithOptions(base, 1e9, 100, 100)
	return Loggers{
		Log:   zap.New(sampled),
		Lease: zap.New(zapcore.NewCore(enc, out, zapcore.InfoLevel)).Named("lease"),
	}, nil
}

// Nop returns loggers that discard everything.
func Nop() Loggers { return Loggers{Log: zap.NewNop(), Lease: zap.NewNop()} }
