package status

import (
	"encoding/json"
	"reflect"
	"sort"
	"testing"
	"time"
)

func populated() Doc {
	return Doc{
		Time:   time.Unix(1_900_000_000, 0).UTC(),
		Broker: "broker:3633",
		Hosts: []Host{{
			Name: "sun1", Addr: "10.0.0.1:3632", CPUs: 8, Power: 3, Slots: 8, Busy: 2, Tier: 3, Reason: "power 3",
			State: "healthy", Load1: 1.5, Load5: 1.25, Load15: 1, JobsDone: 42, Failures: 1,
			Compilers: []string{"x86_64-linux-gnu gcc version 12.2.0"}, Note: "n",
		}},
		Users:    []User{{Name: "alice", Running: 2, Waiting: 3, Usage: 12.5, Weight: 1, Share: 1}},
		Leases:   2,
		Queue:    3,
		Slots:    8,
		Busy:     2,
		Reclaims: []Reclaim{{Time: time.Unix(1_900_000_000, 0).UTC(), Lease: 9, User: "alice", Host: "sun1", Reason: "expired"}},
		Uptime:   12.5,
		Explain:  &Explain{Host: "sun1", Tier: 3, State: "healthy", Reason: "power 3", Detail: "d"},
		Cache:    &Cache{Store: "disk /x", Entries: 2, Bytes: 100, Hits: 3, Misses: 1, Users: []CacheUser{{Name: "al", Hits: 3, Misses: 1}}},
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func marshalMap(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// The field names the API promises (GET /v1/status, dcc status --json).
func TestJSONFieldNames(t *testing.T) {
	doc := marshalMap(t, populated())
	hosts, ok := doc["hosts"].([]any)
	if !ok || len(hosts) != 1 {
		t.Fatalf("hosts = %#v", doc["hosts"])
	}
	users, ok := doc["users"].([]any)
	if !ok || len(users) != 1 {
		t.Fatalf("users = %#v", doc["users"])
	}
	host := hosts[0].(map[string]any)
	user := users[0].(map[string]any)
	tests := []struct {
		name string
		obj  map[string]any
		want map[string]any // required keys and their values
	}{
		{"doc", doc, map[string]any{"leases": 2.0, "queue": 3.0, "slots": 8.0, "busy": 2.0, "broker": "broker:3633", "uptime_s": 12.5}},
		{"host", host, map[string]any{"name": "sun1", "cpus": 8.0, "power": 3.0, "slots": 8.0, "busy": 2.0, "tier": 3.0, "state": "healthy", "load1": 1.5, "jobs_done": 42.0}},
		{"user", user, map[string]any{"name": "alice", "running": 2.0, "waiting": 3.0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.want {
				got, ok := tt.obj[k]
				if !ok {
					t.Errorf("key %q missing; have %v", k, keys(tt.obj))
					continue
				}
				if !reflect.DeepEqual(got, v) {
					t.Errorf("%s = %#v, want %#v", k, got, v)
				}
			}
		})
	}
}

// The complete key sets, so that a renamed or added field is a conscious change.
func TestJSONKeySets(t *testing.T) {
	doc := marshalMap(t, populated())
	tests := []struct {
		name string
		obj  map[string]any
		want []string
	}{
		{"doc", doc, []string{"broker", "busy", "cache", "explain", "hosts", "leases", "queue", "reclaims", "slots", "time", "uptime_s", "users"}},
		{"host", doc["hosts"].([]any)[0].(map[string]any), []string{"addr", "auth", "busy", "compilers", "cpus", "failures", "jobs_done", "load1", "load15", "load5", "name", "note", "power", "protocol", "reason", "slots", "state", "tier"}},
		{"cache", doc["cache"].(map[string]any), []string{"bytes", "corrupt", "entries", "evictions", "hits", "misses", "puts", "store", "users"}},
		{"user", doc["users"].([]any)[0].(map[string]any), []string{"name", "running", "share", "usage", "waiting", "weight"}},
		{"reclaim", doc["reclaims"].([]any)[0].(map[string]any), []string{"host", "lease", "reason", "time", "user"}},
		{"explain", doc["explain"].(map[string]any), []string{"detail", "host", "reason", "state", "tier"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := keys(tt.obj); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("keys %v, want %v", got, tt.want)
			}
		})
	}
}

// Empty optional fields are omitted; required ones stay even when zero.
func TestJSONOmitEmpty(t *testing.T) {
	doc := marshalMap(t, Doc{Hosts: []Host{{Name: "h"}}, Users: []User{{Name: "u"}}})
	if _, ok := doc["explain"]; ok {
		t.Error("explain present though nil")
	}
	h := doc["hosts"].([]any)[0].(map[string]any)
	for _, k := range []string{"addr", "note"} {
		if _, ok := h[k]; ok {
			t.Errorf("empty %s present", k)
		}
	}
	for _, k := range []string{"busy", "tier", "jobs_done", "load1", "slots", "cpus", "power", "state"} {
		if _, ok := h[k]; !ok {
			t.Errorf("zero %s omitted", k)
		}
	}
	u := doc["users"].([]any)[0].(map[string]any)
	for _, k := range []string{"running", "waiting"} {
		if _, ok := u[k]; !ok {
			t.Errorf("zero %s omitted", k)
		}
	}
}

func TestJSONRoundTrip(t *testing.T) {
	in := populated()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out Doc
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip:\n in %+v\nout %+v", in, out)
	}
}
