package wire

import (
	"errors"
	"testing"
	"time"
)

// Every value here is part of the wire protocol: a change must break this
// test. Never renumber; only append.
func TestTypeConstants(t *testing.T) {
	tests := []struct {
		name string
		got  Type
		want uint8
	}{
		{"Hello", TypeHello, 1},
		{"Welcome", TypeWelcome, 4},
		{"Error", TypeError, 5},
		{"LeaseRequest", TypeLeaseRequest, 10},
		{"LeaseQueued", TypeLeaseQueued, 11},
		{"LeaseGrant", TypeLeaseGrant, 12},
		{"LeaseDenied", TypeLeaseDenied, 13},
		{"LeaseRenew", TypeLeaseRenew, 14},
		{"LeaseRelease", TypeLeaseRelease, 15},
		{"Register", TypeRegister, 20},
		{"HostStatus", TypeHostStatus, 21},
		{"JobDone", TypeJobDone, 22},
		{"Command", TypeCommand, 23},
		{"JobRequest", TypeJobRequest, 30},
		{"JobResult", TypeJobResult, 31},
		{"JobSource", TypeJobSource, 32},
		{"StatusQuery", TypeStatusQuery, 40},
		{"StatusReply", TypeStatusReply, 41},
		{"AdminRequest", TypeAdminRequest, 42},
		{"AdminReply", TypeAdminReply, 43},
		{"AgentCompile", TypeAgentCompile, 50},
		{"AgentResult", TypeAgentResult, 51},
		{"AgentPing", TypeAgentPing, 52},
		{"AgentPong", TypeAgentPong, 53},
		{"ClientReport", TypeClientReport, 54},
		{"AgentSource", TypeAgentSource, 55},
		{"AgentRecord", TypeAgentRecord, 56},
		{"CacheLookup", TypeCacheLookup, 60},
		{"CacheAnswer", TypeCacheAnswer, 61},
		{"CachePut", TypeCachePut, 62},
	}
	seen := map[Type]string{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if uint8(tt.got) != tt.want {
				t.Errorf("Type%s = %d, want %d", tt.name, tt.got, tt.want)
			}
			m := newMessage(tt.got)
			if m == nil {
				t.Fatalf("newMessage(%d) = nil", tt.got)
			}
			if m.Type() != tt.got {
				t.Errorf("newMessage(%d).Type() = %d", tt.got, m.Type())
			}
		})
		if other, dup := seen[tt.got]; dup {
			t.Errorf("Type%s and Type%s share value %d", tt.name, other, tt.got)
		}
		seen[tt.got] = tt.name
	}
	// newMessage must know exactly the pinned types and nothing else, so a
	// new type cannot be added without pinning it here.
	for i := 0; i < 256; i++ {
		_, pinned := seen[Type(i)]
		if known := newMessage(Type(i)) != nil; known != pinned {
			t.Errorf("newMessage(%d) known=%v, pinned in this test=%v", i, known, pinned)
		}
	}
}

func TestProtocolConstants(t *testing.T) {
	ints := []struct {
		name      string
		got, want int64
	}{
		{"ProtocolVersion", ProtocolVersion, 2},
		{"HeaderSize", HeaderSize, 5},
		{"MaxHandshakeFrame", MaxHandshakeFrame, 4096},
		{"MaxControlFrame", MaxControlFrame, 1048576},
		{"MaxJobFrame", MaxJobFrame, 67108864},
		{"MaxStatusFrame", MaxStatusFrame, 16777216},
		{"SignatureSize", SignatureSize, 64},
		{"MaxTokenSize", MaxTokenSize, 1024},
		{"MaxDepth", MaxDepth, 16},
		{"CodeVersion", CodeVersion, 1},
		{"CodeAuth", CodeAuth, 2},
		{"CodeUnknown", CodeUnknown, 3},
		{"CodeBadRequest", CodeBadRequest, 4},
		{"CodeDenied", CodeDenied, 5},
		{"CodeInternal", CodeInternal, 6},
		{"CodeBusy", CodeBusy, 7},
		{"HandshakeTimeout", int64(HandshakeTimeout), int64(5 * time.Second)},
		{"ControlTimeout", int64(ControlTimeout), int64(10 * time.Second)},
	}
	for _, tt := range ints {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("%s = %d, want %d", tt.name, tt.got, tt.want)
			}
		})
	}
	strs := []struct{ name, got, want string }{
		{"TokenMagic", TokenMagic, "DCT1"},
		{"RoleClient", RoleClient, "client"},
		{"RoleVolunteer", RoleVolunteer, "volunteer"},
		{"RoleAdmin", RoleAdmin, "admin"},
		{"OutcomeOK", OutcomeOK, "ok"},
		{"OutcomeCompileError", OutcomeCompileError, "compile_error"},
		{"OutcomeFailed", OutcomeFailed, "failed"},
		{"OutcomeRejected", OutcomeRejected, "rejected"},
		{"OutcomeCancelled", OutcomeCancelled, "cancelled"},
		{"CommandCancel", CommandCancel, "cancel"},
		{"CommandDrain", CommandDrain, "drain"},
		{"CommandResume", CommandResume, "resume"},
		{"AdminDrain", AdminDrain, "drain"},
		{"AdminUndrain", AdminUndrain, "undrain"},
		{"AdminBlock", AdminBlock, "block"},
		{"AdminUnblock", AdminUnblock, "unblock"},
	}
	for _, tt := range strs {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("%s = %q, want %q", tt.name, tt.got, tt.want)
			}
		})
	}
}

func TestSentinelErrorsDistinct(t *testing.T) {
	errs := []error{ErrFrameTooLarge, ErrMalformed, ErrUnexpected, ErrUnknownType, ErrAuth}
	for i, a := range errs {
		for j, b := range errs {
			if i != j && errors.Is(a, b) {
				t.Errorf("%v matches %v", a, b)
			}
		}
	}
}

func TestErrorImplementsError(t *testing.T) {
	var err error = &Error{Code: CodeBusy, Message: "full"}
	if got, want := err.Error(), "remote error 7: full"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
