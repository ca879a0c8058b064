package volunteer

import (
	"time"

	"github.com/hashicorp/yamux"
	"go.uber.org/zap"

	"github.com/dcc-farm/dcc/internal/cache"
	"github.com/dcc-farm/dcc/internal/compilerargs"
	"github.com/dcc-farm/dcc/pkg/wire"
)

// cacheLink is where this host's results go into the farm's result cache:
// the current broker session, when the broker keeps a cache. Hosts are
// the cache's only writers (docs/cache.md).
type cacheLink struct {
	sess *yamux.Session
	salt string
}

// setCacheLink records the broker session's cache, or none (nil sess).
func (v *Volunteer) setCacheLink(sess *yamux.Session, w *wire.Welcome) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if sess == nil || w == nil || !w.Cache {
		v.cacheTo = cacheLink{}
		return
	}
	v.cacheTo = cacheLink{sess: sess, salt: w.CacheSalt}
}

// cacheable reports whether a job's result may serve other clients as if
// they had compiled it: a successful compile, whose diagnostics (if any)
// are exactly the local compiler's. gcc's diagnostics on preprocessed
// text are not, so a gcc job that printed any is not kept: dcc compiles
// those locally to print them exactly.
func cacheable(req *wire.JobRequest, res *wire.JobResult) bool {
	if res.Code != wire.RejectNone || res.ExitCode != 0 || len(res.Output) == 0 {
		return false
	}
	_, rewritten := compilerargs.SourceExt(req.Ext)
	return rewritten || len(res.Stderr) == 0
}

// putCache offers a finished job's result to the broker's cache, under
// the key this host computes from what it compiled: the compiler it ran
// (and its binary's digest), the arguments and the source it received.
// A client cannot make a host store an object under another job's key.
func (j *jobRun) putCache(res *wire.JobResult) {
	v := j.v
	v.mu.Lock()
	link := v.cacheTo
	v.mu.Unlock()
	if link.sess == nil || !cacheable(j.req, res) {
		return
	}
	req := j.req
	key := cache.JobKey(link.salt, req.Fingerprint, j.comp.Digest, req.Compiler, req.Lang, req.Ext, req.Kind, req.Args, req.SourceName, req.Digest)
	put := &wire.CachePut{Key: key[:], Object: res.Output, Stdout: res.Stdout, Stderr: res.Stderr, ExitCode: res.ExitCode, ObjectDigest: res.Digest}
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		st, err := link.sess.OpenStream()
		if err != nil {
			return // the session ended: the result simply is not cached
		}
		defer st.Close()
		c := wire.NewConn(st, wire.MaxControlFrame, 60*time.Second)
		if err := c.Send(put); err != nil {
			v.log.Debug("cache put", append(j.fields, zap.Error(err))...)
			return
		}
		v.m.cachePuts.Inc()
	}()
}
