package wire

import "fmt"

// Message is implemented by every message type.
type Message interface {
	Type() Type
}

// Roles a peer declares in its Hello.
const (
	RoleClient    = "client"    // a dcc agent or process asking for leases
	RoleVolunteer = "volunteer" // a host lending CPU
	RoleAdmin     = "admin"     // dcc farm / status commands
)

// Hello opens every connection, after the TLS handshake.
type Hello struct {
	Version int    `msgpack:"v"`
	Role    string `msgpack:"role"`
	Name    string `msgpack:"name"` // machine name; a volunteer's must be its certificate's
	// User is ignored: a client is charged as the name in its credential.
	// An admin credential may name another user (tools acting for one).
	User  string `msgpack:"user,omitempty"`
	Build string `msgpack:"build,omitempty"` // software version, for logs
}

// Welcome admits a connection.
type Welcome struct {
	Session uint64 `msgpack:"session"`
	// BrokerKey is the broker's ed25519 public key that signs lease tokens;
	// sent to volunteers, which verify every job's token with it.
	BrokerKey []byte `msgpack:"bkey,omitempty"`
	// TokenTTLMs is the lease TTL the broker uses, for the holder's renew cadence.
	LeaseTTLMs int64 `msgpack:"ttl,omitempty"`
	// Revoked lists the serial numbers of revoked credentials, for a
	// volunteer to refuse (CommandRevoked brings later changes).
	Revoked [][]byte `msgpack:"revoked,omitempty"`
	// Cache says the broker keeps a result cache; CacheSalt goes into
	// every key (an admin changes it to disown every entry).
	Cache     bool   `msgpack:"cache,omitempty"`
	CacheSalt string `msgpack:"salt,omitempty"`
	// EarlySource says a volunteer takes a job header before its source
	// exists (JobRequest.Early): it starts the compiler on a pipe while
	// the client still preprocesses. Without it, a client sends the
	// header only with the source.
	EarlySource bool `msgpack:"early,omitempty"`
}

// Error reports a refusal. It implements error.
type Error struct {
	Code    int    `msgpack:"code"`
	Message string `msgpack:"msg"`
}

func (e *Error) Error() string { return fmt.Sprintf("remote error %d: %s", e.Code, e.Message) }

// LeaseRequest asks the broker for a slot. It opens a lease stream; the
// stream stays open for the lease's life, and closing it releases the lease.
type LeaseRequest struct {
	Fingerprint string `msgpack:"fp"`   // compiler identity: target triple and full version
	Lang        string `msgpack:"lang"` // c, c++, ...
	SourceBytes int64  `msgpack:"size"`
	// Digest is the sha256 of the preprocessed source, signed into the
	// token when known. A client that asks for its lease while the
	// preprocessor still runs sends none: the lease is then bound to the
	// source when the job is sent (the volunteer checks the job header's
	// digest against the source).
	Digest    []byte `msgpack:"digest,omitempty"`
	MaxWaitMs int64  `msgpack:"maxwait"`
	// LocalSlotFree says the client could compile locally right now; the broker
	// then answers Denied instead of queueing when its estimated wait is longer
	// than LocalEstimateMs.
	LocalSlotFree   bool   `msgpack:"localfree,omitempty"`
	LocalEstimateMs int64  `msgpack:"localest,omitempty"`
	File            string `msgpack:"file,omitempty"` // for logs and explanations only
	// Avoid names a host this job already failed on (a retry).
	Avoid string `msgpack:"avoid,omitempty"`
	// NeedsDCC says only a dcc volunteer can compile the job (its source
	// is not plain preprocessed text), not a stock distccd.
	NeedsDCC bool `msgpack:"needsdcc,omitempty"`
}

// LeaseQueued tells a waiting client where it stands.
type LeaseQueued struct {
	Position  int   `msgpack:"pos"`
	EstWaitMs int64 `msgpack:"est"`
	// Backlogged says the user wants more slots than its fair share: its
	// queued jobs gain from any free local slot (scheduler.CompileLocally).
	Backlogged bool `msgpack:"backlog,omitempty"`
}

// LeaseGrant hands out a slot.
type LeaseGrant struct {
	LeaseID uint64  `msgpack:"id"`
	Host    string  `msgpack:"host"`
	Addr    string  `msgpack:"addr"`
	Tier    int     `msgpack:"tier"`
	Power   float64 `msgpack:"power"`
	TTLMs   int64   `msgpack:"ttl"`
	WaitMs  int64   `msgpack:"wait"`
	Token   []byte  `msgpack:"token"`
	// Speed is the job's expected speed on the host under its load (power
	// units), for the client's choice to decline a slow grant
	// (scheduler.DeclineGrant). 0: unknown, use Power.
	Speed float64 `msgpack:"speed,omitempty"`
	// Protocol is "distcc" for a stock distccd host (the job goes over
	// distcc's protocol 1, unauthenticated); "" for a dcc volunteer.
	Protocol string `msgpack:"proto,omitempty"`
	// Verify asks the client to compile the job locally too and report a
	// differing object (the broker asks it of distccd hosts' first jobs
	// and some after: they cannot prove their compiler).
	Verify bool `msgpack:"verify,omitempty"`
}

// Denial codes.
const (
	DenyOther       = 0
	DenyNoCompiler  = 1 // no usable host offers the compiler
	DenyTimeout     = 2 // waited longer than the wait limit
	DenyLocalFaster = 3 // the estimated wait is longer than compiling on the free local slot
	DenyBusy        = 4 // the broker's limits for this client are reached (streams, queued requests)
)

// LeaseDenied says the farm cannot serve this request; the client compiles locally.
type LeaseDenied struct {
	Code   int    `msgpack:"code,omitempty"`
	Reason string `msgpack:"reason"`
}

// LeaseRenew extends the lease on this stream by its TTL.
type LeaseRenew struct {
	LeaseID uint64 `msgpack:"id"`
}

// Outcomes a client reports when it releases a lease.
const (
	OutcomeOK           = "ok"            // compiled, object returned
	OutcomeCompileError = "compile_error" // the compiler itself failed: the user's code
	OutcomeFailed       = "failed"        // farm failure: transport, timeout, host refused
	OutcomeRejected     = "rejected"      // the volunteer refused the job
	OutcomeCancelled    = "cancelled"     // the client gave up before running
	OutcomeDeclined     = "declined"      // the client gave the grant back unused: its own free slot is as fast
	OutcomeCached       = "cached"        // the client gave the grant back unused: the result cache had the job
)

// LeaseRelease ends a lease and reports how the job went.
type LeaseRelease struct {
	LeaseID uint64 `msgpack:"id"`
	Outcome string `msgpack:"outcome"`
	Reason  string `msgpack:"reason,omitempty"`
}

// CompilerInfo describes one compiler a volunteer offers.
type CompilerInfo struct {
	Name        string `msgpack:"name"` // driver base name, e.g. gcc, g++, clang
	Fingerprint string `msgpack:"fp"`
}

// Register is the first message on a volunteer's control stream.
type Register struct {
	Name      string         `msgpack:"name"`
	Addr      string         `msgpack:"addr"` // where clients reach its job listener
	CPUs      int            `msgpack:"cpus"`
	Slots     int            `msgpack:"slots"`
	Compilers []CompilerInfo `msgpack:"compilers"`
	// Running lists the tokens of jobs still running on this host, so that a
	// restarted broker can adopt their leases.
	Running [][]byte   `msgpack:"running,omitempty"`
	Status  HostStatus `msgpack:"status"`
	// Sandbox says what confines compiles on the host (or, loudly, that
	// nothing does), for status and explanations.
	Sandbox string `msgpack:"sandbox,omitempty"`
}

// HostStatus is a volunteer's periodic report.
type HostStatus struct {
	Load1     float64 `msgpack:"l1"`
	Load5     float64 `msgpack:"l5"`
	Load15    float64 `msgpack:"l15"`
	Running   int     `msgpack:"running"`
	Available bool    `msgpack:"avail"`
	Reason    string  `msgpack:"reason,omitempty"` // why not available
	// ExternalLoad says the load figures come from an outside monitor
	// through the broker's API: the broker ignores the ones sent here.
	ExternalLoad bool `msgpack:"extload,omitempty"`
	// Own1 is the 1-minute average of the farm jobs running here, on the
	// same scale as Load1, so the broker can tell foreign load from ours.
	Own1     float64 `msgpack:"own1,omitempty"`
	OwnKnown bool    `msgpack:"ownknown,omitempty"`
	// Leases lists the leases whose jobs run here now. A job runs only
	// while its client's stream to this host is open, so the broker keeps
	// such a lease alive even when no client renews it: after a broker
	// restart, adopted leases have no holder to renew them.
	Leases []uint64 `msgpack:"leases,omitempty"`
	// ClockMs is the volunteer's wall clock (Unix ms) when it sent the
	// report; the broker compares it with its own to show clock skew.
	ClockMs int64 `msgpack:"clock,omitempty"`
}

// JobDone tells the broker a job on this host has ended.
type JobDone struct {
	LeaseID uint64 `msgpack:"id"`
	Outcome string `msgpack:"outcome"`
	WallMs  int64  `msgpack:"wall"`
}

// Commands the broker sends a volunteer.
const (
	CommandCancel = "cancel" // stop the job of LeaseID
	CommandDrain  = "drain"
	CommandResume = "resume"
	// CommandRevoked replaces the volunteer's list of revoked credentials
	// (Serials): it refuses them from then on and closes their sessions.
	CommandRevoked = "revoked"
)

// Command is sent from broker to volunteer on the control stream.
type Command struct {
	Kind    string   `msgpack:"kind"`
	LeaseID uint64   `msgpack:"id,omitempty"`
	Reason  string   `msgpack:"reason,omitempty"`
	Serials [][]byte `msgpack:"serials,omitempty"`
}

// JobRequest asks a volunteer to compile one preprocessed source. It is
// the job's header: the source follows in its own JobSource frame, sent
// right behind it, so that the volunteer checks the token, the arguments
// and its free slots from a small frame before it reads (and buffers) up
// to MaxJobFrame bytes of source.
type JobRequest struct {
	Token       []byte `msgpack:"token"`
	Compiler    string `msgpack:"compiler"` // driver base name the client runs (gcc, g++, cc...)
	Fingerprint string `msgpack:"fp"`
	// Ext is the shipped source's extension: .i .ii .mi .mii .s for
	// preprocessed text, or a source extension (.c .cc .cpp ...) for a
	// source whose includes were inlined (clang -frewrite-includes), which
	// the host compiles as Lang.
	Ext         string   `msgpack:"ext"`
	Lang        string   `msgpack:"lang,omitempty"`
	Kind        string   `msgpack:"kind"` // .o or .s: what to produce
	Args        []string `msgpack:"args"`
	SourceName  string   `msgpack:"srcname"` // base name, for the file in the job directory
	SourceBytes int64    `msgpack:"size"`    // length of the JobSource that follows
	Digest      []byte   `msgpack:"digest"`  // sha256 of that source
	// Early says the source does not exist yet (the client's preprocessor
	// still runs): SourceBytes and Digest are zero, and the JobSource that
	// follows, whenever it comes, carries its own Digest. The volunteer
	// checks the header and the token, takes a slot and starts the
	// compiler on a pipe at once, so the compiler's start-up overlaps the
	// client's preprocessing; the compiler reads the source only after the
	// volunteer has checked it against that digest. Only for a token bound
	// to no digest, to a volunteer whose Welcome says EarlySource.
	Early bool `msgpack:"early,omitempty"`
}

// JobSource carries a job's preprocessed source, after its JobRequest.
type JobSource struct {
	Source []byte `msgpack:"src"`
	Digest []byte `msgpack:"digest,omitempty"` // sha256 of Source, for an Early job
}

// Reasons a volunteer refuses or fails a job (JobResult.Code). They are
// part of the protocol: the client decides from the code, never from the
// text, whether the host is to blame and whether another host may do better.
const (
	RejectNone        = 0
	RejectBadRequest  = 1 // malformed or inconsistent request
	RejectToken       = 2 // lease token refused: signature, host, job, expiry, replay, user
	RejectArgs        = 3 // an argument is not on the remote allow list
	RejectNoCompiler  = 4 // no compiler with that fingerprint here
	RejectUnavailable = 5 // the host does not take work now (owner back, schedule, paused, drained)
	RejectBusy        = 6 // every slot is busy
	RejectCancelled   = 7 // the job was cancelled (the broker took the lease back, or the host drains)
	RejectFailed      = 8 // the job did not complete for a farm reason (limits, I/O, sandbox)
	RejectTooLarge    = 9 // the output does not fit in a frame: the job's own size, no host would do better
)

// HostFault reports whether a rejection counts against the host's
// health: a host that is merely unavailable, cancelled by the broker or
// asked for something no host could return is not at fault.
func HostFault(code int) bool {
	switch code {
	case RejectUnavailable, RejectCancelled, RejectTooLarge:
		return false
	}
	return true
}

// JobResult is the volunteer's answer.
type JobResult struct {
	// Code is non-zero when the volunteer refused or failed to run the job
	// for a farm reason (bad token, bad argument, missing compiler,
	// resource limit); Rejected then says why in words. The client
	// compiles locally or tries another host.
	Code     int    `msgpack:"code,omitempty"`
	Rejected string `msgpack:"rejected,omitempty"`
	ExitCode int    `msgpack:"exit"`
	Stdout   []byte `msgpack:"stdout,omitempty"`
	Stderr   []byte `msgpack:"stderr,omitempty"`
	Output   []byte `msgpack:"out,omitempty"`
	Digest   []byte `msgpack:"digest,omitempty"` // sha256 of Output
	WallMs   int64  `msgpack:"wall"`
	CPUMs    int64  `msgpack:"cpu"`
	// Slot is the volunteer's slot index that ran the job (for timelines).
	Slot int `msgpack:"slot,omitempty"`
}

// StatusQuery asks the broker for its status document (JSON).
type StatusQuery struct {
	Explain string `msgpack:"explain,omitempty"`
}

// StatusReply carries the status document as JSON, the same as GET /v1/status.
type StatusReply struct {
	JSON []byte `msgpack:"json"`
}

// Admin actions.
const (
	AdminDrain   = "drain"
	AdminUndrain = "undrain"
	AdminBlock   = "block"
	AdminUnblock = "unblock"
	// AdminCacheClear empties the result cache (Host is empty).
	AdminCacheClear = "cache-clear"
)

// AdminRequest asks the broker to change a host's state.
type AdminRequest struct {
	Action string `msgpack:"action"`
	Host   string `msgpack:"host"`
	Reason string `msgpack:"reason,omitempty"`
}

// AdminReply answers an AdminRequest.
type AdminReply struct {
	OK      bool   `msgpack:"ok"`
	Message string `msgpack:"msg,omitempty"`
}

// AgentCompile is sent by a dcc process to its local agent over the unix socket.
type AgentCompile struct {
	Version    int      `msgpack:"v"`
	Build      string   `msgpack:"build"`    // dcc's build ID; the agent refuses another build's jobs
	Compiler   string   `msgpack:"compiler"` // path as resolved by dcc
	Driver     string   `msgpack:"driver"`   // base name
	Lang       string   `msgpack:"lang"`
	Ext        string   `msgpack:"ext"`
	Kind       string   `msgpack:"kind"`
	Args       []string `msgpack:"args"`
	SourceName string   `msgpack:"srcname"`
	// Source is the preprocessed source, or nil when it follows in an
	// AgentSource: dcc sends the request before it preprocesses, so that
	// the agent asks for a lease while the preprocessor runs.
	Source      []byte `msgpack:"src"`
	SizeHint    int64  `msgpack:"sizehint,omitempty"` // expected source size when Source follows
	File        string `msgpack:"file"`               // the user's source path, for logs
	MaxWaitMs   int64  `msgpack:"maxwait"`
	Verbose     bool   `msgpack:"verbose"`
	LocalSlot   bool   `msgpack:"localslot"` // dcc could compile locally now
	Fingerprint string `msgpack:"fp,omitempty"`
	NoCache     bool   `msgpack:"nocache,omitempty"` // DCC_CACHE=0: do not look the job up in the cache
	// ParentPID and WorkDir are the dcc process's parent and working
	// directory, when it keeps a build record: the agent finds the build
	// from them (internal/buildroot) while the job runs, and fills in the
	// AgentRecord that follows the result on this connection.
	ParentPID int    `msgpack:"ppid,omitempty"`
	WorkDir   string `msgpack:"wd,omitempty"`
}

// AgentResult is the agent's answer: either a remote result, or Fallback
// naming why the dcc process must compile locally.
type AgentResult struct {
	Fallback string `msgpack:"fallback,omitempty"`
	// LocalSlot is set with a Fallback when the agent reserved one of the
	// machine's local slots for this compile: the dcc process keeps the
	// socket open while it compiles locally, and closing it frees the slot.
	LocalSlot bool      `msgpack:"localslot,omitempty"`
	Host      string    `msgpack:"host,omitempty"`
	Protocol  string    `msgpack:"proto,omitempty"`  // the host's, from the grant
	Verify    bool      `msgpack:"verify,omitempty"` // the broker asks for a check against a local compile
	Tier      int       `msgpack:"tier,omitempty"`
	WaitMs    int64     `msgpack:"wait,omitempty"`
	Log       []string  `msgpack:"log,omitempty"` // decisions, for DCC_VERBOSE
	Result    JobResult `msgpack:"result"`
	// Phases are the agent's part of the job's timeline (lease wait, send,
	// remote compile, return, cache lookups), for dcc's build record.
	Phases    []PhaseRecord `msgpack:"phases,omitempty"`
	EstWaitMs int64         `msgpack:"estwait,omitempty"` // the broker's wait estimate, if the job queued
	// CachedAtMs is set when the result came from the cache: Host then
	// names the host that compiled it, at this time.
	CachedAtMs int64 `msgpack:"cachedat,omitempty"`
}

// PhaseRecord is one phase of a compile, in Unix nanoseconds; Host names
// the farm host it ran on, if any.
type PhaseRecord struct {
	Name    string `msgpack:"name"`
	StartNs int64  `msgpack:"start"`
	EndNs   int64  `msgpack:"end"`
	Host    string `msgpack:"host,omitempty"`
}

// AgentRecord is sent by a dcc process to its agent when a compile is
// done: the whole job's timeline, to keep with the build it belongs to
// (internal/timeline). A build is the outermost build tool among dcc's
// ancestors (make, ninja, ...), named by its process and start time. A
// farm job's record follows its AgentResult on the job's connection,
// with no build: the agent names it (AgentCompile.ParentPID); any other
// comes on a connection of its own, with its build.
type AgentRecord struct {
	BuildID      string        `msgpack:"build"`
	Command      []string      `msgpack:"cmd"`
	Dir          string        `msgpack:"dir"`
	BuildStartNs int64         `msgpack:"bstart"`
	Source       string        `msgpack:"src"`
	Output       string        `msgpack:"out"`
	Where        string        `msgpack:"where"` // remote, local or cache
	Host         string        `msgpack:"host,omitempty"`
	Slot         int           `msgpack:"slot"`
	LocalReason  string        `msgpack:"reason,omitempty"`
	Exit         int           `msgpack:"exit"`
	BytesOut     int64         `msgpack:"bout,omitempty"`
	BytesIn      int64         `msgpack:"bin,omitempty"`
	EstWaitMs    int64         `msgpack:"estwait,omitempty"`
	Phases       []PhaseRecord `msgpack:"phases"`
}

// AgentSource carries the preprocessed source of the AgentCompile sent
// before it on the same socket.
type AgentSource struct {
	Source []byte `msgpack:"src"`
}

// CacheLookup asks the broker's result cache for a job's entry by key
// (internal/cache: compiler, digest of its binary, arguments, the digest
// of the preprocessed source). The answer is a CacheAnswer.
type CacheLookup struct {
	Key []byte `msgpack:"key"`
}

// CacheAnswer is an entry, or Found false.
type CacheAnswer struct {
	Found        bool   `msgpack:"found"`
	Object       []byte `msgpack:"out,omitempty"`
	Stdout       []byte `msgpack:"stdout,omitempty"`
	Stderr       []byte `msgpack:"stderr,omitempty"`
	ExitCode     int    `msgpack:"exit,omitempty"`
	ObjectDigest []byte `msgpack:"digest,omitempty"`
	Producer     string `msgpack:"producer,omitempty"` // the host that compiled it
	ProducedAtMs int64  `msgpack:"at,omitempty"`
}

// CachePut is a volunteer's result for the cache, sent to the broker on
// its own session after the job's result went to the client. Only hosts
// write: the broker takes puts from volunteer sessions alone and records
// the session's host as the producer.
type CachePut struct {
	Key          []byte `msgpack:"key"`
	Object       []byte `msgpack:"out"`
	Stdout       []byte `msgpack:"stdout,omitempty"`
	Stderr       []byte `msgpack:"stderr,omitempty"`
	ExitCode     int    `msgpack:"exit,omitempty"`
	ObjectDigest []byte `msgpack:"digest"`
}

// AgentPing checks that an agent is alive and of the same build.
type AgentPing struct {
	Version int    `msgpack:"v"`
	Build   string `msgpack:"build"`
}

// AgentPong answers a ping.
type AgentPong struct {
	Version int    `msgpack:"v"`
	Build   string `msgpack:"build"`
	PID     int    `msgpack:"pid"`
	// The agent's local slots: in use, in all, and the jobs waiting at
	// the broker that a freed slot could take home.
	LocalBusy  int `msgpack:"lbusy,omitempty"`
	LocalSlots int `msgpack:"lslots,omitempty"`
	Queued     int `msgpack:"queued,omitempty"`
}

// ClientReport tells the broker about local fallbacks (for metrics) and
// about hosts whose output failed a verification against a local compile.
type ClientReport struct {
	Fallbacks  map[string]int64 `msgpack:"fallbacks"`
	Mismatches []string         `msgpack:"mismatches,omitempty"` // hosts whose object differed
}

func (*Hello) Type() Type        { return TypeHello }
func (*Welcome) Type() Type      { return TypeWelcome }
func (*Error) Type() Type        { return TypeError }
func (*LeaseRequest) Type() Type { return TypeLeaseRequest }
func (*LeaseQueued) Type() Type  { return TypeLeaseQueued }
func (*LeaseGrant) Type() Type   { return TypeLeaseGrant }
func (*LeaseDenied) Type() Type  { return TypeLeaseDenied }
func (*LeaseRenew) Type() Type   { return TypeLeaseRenew }
func (*LeaseRelease) Type() Type { return TypeLeaseRelease }
func (*Register) Type() Type     { return TypeRegister }
func (*HostStatus) Type() Type   { return TypeHostStatus }
func (*JobDone) Type() Type      { return TypeJobDone }
func (*Command) Type() Type      { return TypeCommand }
func (*JobRequest) Type() Type   { return TypeJobRequest }
func (*JobResult) Type() Type    { return TypeJobResult }
func (*JobSource) Type() Type    { return TypeJobSource }
func (*StatusQuery) Type() Type  { return TypeStatusQuery }
func (*StatusReply) Type() Type  { return TypeStatusReply }
func (*AdminRequest) Type() Type { return TypeAdminRequest }
func (*AdminReply) Type() Type   { return TypeAdminReply }
func (*AgentCompile) Type() Type { return TypeAgentCompile }
func (*AgentResult) Type() Type  { return TypeAgentResult }
func (*AgentPing) Type() Type    { return TypeAgentPing }
func (*AgentPong) Type() Type    { return TypeAgentPong }
func (*ClientReport) Type() Type { return TypeClientReport }
func (*AgentSource) Type() Type  { return TypeAgentSource }
func (*AgentRecord) Type() Type  { return TypeAgentRecord }
func (*CacheLookup) Type() Type  { return TypeCacheLookup }
func (*CacheAnswer) Type() Type  { return TypeCacheAnswer }
func (*CachePut) Type() Type     { return TypeCachePut }

// newMessage returns a zero message for t, or nil for an unknown type.
func newMessage(t Type) Message {
	switch t {
	case TypeHello:
		return new(Hello)
	case TypeWelcome:
		return new(Welcome)
	case TypeError:
		return new(Error)
	case TypeLeaseRequest:
		return new(LeaseRequest)
	case TypeLeaseQueued:
		return new(LeaseQueued)
	case TypeLeaseGrant:
		return new(LeaseGrant)
	case TypeLeaseDenied:
		return new(LeaseDenied)
	case TypeLeaseRenew:
		return new(LeaseRenew)
	case TypeLeaseRelease:
		return new(LeaseRelease)
	case TypeRegister:
		return new(Register)
	case TypeHostStatus:
		return new(HostStatus)
	case TypeJobDone:
		return new(JobDone)
	case TypeCommand:
		return new(Command)
	case TypeJobRequest:
		return new(JobRequest)
	case TypeJobResult:
		return new(JobResult)
	case TypeJobSource:
		return new(JobSource)
	case TypeStatusQuery:
		return new(StatusQuery)
	case TypeStatusReply:
		return new(StatusReply)
	case TypeAdminRequest:
		return new(AdminRequest)
	case TypeAdminReply:
		return new(AdminReply)
	case TypeAgentCompile:
		return new(AgentCompile)
	case TypeAgentResult:
		return new(AgentResult)
	case TypeAgentPing:
		return new(AgentPing)
	case TypeAgentPong:
		return new(AgentPong)
	case TypeClientReport:
		return new(ClientReport)
	case TypeAgentSource:
		return new(AgentSource)
	case TypeAgentRecord:
		return new(AgentRecord)
	case TypeCacheLookup:
		return new(CacheLookup)
	case TypeCacheAnswer:
		return new(CacheAnswer)
	case TypeCachePut:
		return new(CachePut)
	}
	return nil
}
