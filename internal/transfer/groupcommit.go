package transfer

import (
	"context"
	"sync"
	"time"

	"github.com/posbridge/posbridge/internal/db"
)

// The parallel workers' ledger writes are committed in groups: a
// transaction's BEGIN and COMMIT (its locks and WAL frames) cost about as
// much as its statements, and with 2,000 small files each file's row
// stage rename was a commit of its own (a third of a push's CPU). A write
// waits until groupSize workers have one, or every worker of the run
// has, or groupWait has passed since the oldest arrived; the rows of
// the group then go in one transaction. Each file's write still commits
// before the step it guards (the rename, moving the file to sent/, a
// pull's --after), so a kill leaves each file as before: its rows are
// those of a file killed right before or after its write.
const (
	groupSize = 8
	groupWait = 2 * time.Millisecond
)

// writeReq is a worker's write waiting for its group's commit.
type writeReq struct {
	ctx context.Context
	h   *heldWrite
	fn  func(p *db.Prepared) error
	// sync, when set, must have made fn's subject durable before fn is
	// committed (as a held write's sync does for it).
	sync      *groupSync
	err, herr error
	done      bool
}

// commitGroup gathers the workers' writes.
type commitGroup struct {
	mu      sync.Mutex
	cond    *sync.Cond
	workers int // the run's workers that have not ended
	pending []*writeReq
	since   time.Time // when the oldest pending write arrived
	running bool      // a group is being committed
	// wait is the longest a write waits for others; 0 means groupWait.
	wait time.Duration
}

func (g *commitGroup) maxWait() time.Duration {
	if g.wait == 0 {
		return groupWait
	}
	return g.wait
}

func (g *commitGroup) init() {
	if g.cond == nil {
		g.cond = sync.NewCond(&g.mu)
	}
}

// join counts n more workers, which each call leave when they end.
func (g *commitGroup) join(n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.init()
	g.workers += n
}

// leave counts a worker out: the writes waiting for it no longer do.
func (g *commitGroup) leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.workers--
	g.cond.Broadcast()
}

// ready says whether the pending writes are to be committed now.
func (g *commitGroup) ready() bool {
	n := len(g.pending)
	return n > 0 && !g.running && (n >= min(groupSize, max(g.workers, 1)) || time.Since(g.since) >= g.maxWait())
}

// arm starts the wait of the oldest pending write: the waiters look again
// once it is over. g.mu is held.
func (g *commitGroup) arm() {
	g.since = time.Now()
	time.AfterFunc(g.maxWait(), func() {
		g.mu.Lock()
		g.cond.Broadcast()
		g.mu.Unlock()
	})
}

// writeGrouped is writeWith for a worker: h's write and fn are committed
// in one transaction with those of other workers, and when that fails each
// worker's again on its own, so each error is its own.
func (s *stmts) writeGrouped(ctx context.Context, h *heldWrite, fn func(p *db.Prepared) error, sync *groupSync) (err, herr error) {
	g := &s.group
	r := &writeReq{ctx: ctx, h: h, fn: fn, sync: sync}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.init()
	if len(g.pending) == 0 {
		g.arm()
	}
	g.pending = append(g.pending, r)
	for !r.done {
		if !g.ready() {
			g.cond.Wait()
			continue
		}
		batch := g.pending
		g.pending = nil
		g.running = true
		g.mu.Unlock()
		s.commitBatch(batch)
		g.mu.Lock()
		g.running = false
		for _, b := range batch {
			b.done = true
		}
		if len(g.pending) > 0 {
			// Those that came during the commit wait from now on.
			g.arm()
		}
		g.cond.Broadcast()
	}
	return r.err, r.herr
}

// commitBatch commits the writes of batch in one transaction, or, when
// that fails, each on its own; it sets their errors, not done (the
// waiters read it under g.mu). The held writes' syncs run first, each
// once; a held write whose sync fails is not made.
func (s *stmts) commitBatch(batch []*writeReq) {
	var synced map[*groupSync]error
	type failed struct {
		r   *writeReq
		err error
	}
	var unsynced, fnUnsynced []failed
	syncOnce := func(g *groupSync) error {
		if synced == nil {
			synced = map[*groupSync]error{}
		}
		err, ok := synced[g]
		if !ok {
			err = g.Sync()
			synced[g] = err
		}
		return err
	}
	for _, r := range batch {
		if r.h != nil && r.h.sync != nil {
			if err := syncOnce(r.h.sync); err != nil {
				r.h = nil
				unsynced = append(unsynced, failed{r, err})
			}
		}
		if r.fn != nil && r.sync != nil {
			if err := syncOnce(r.sync); err != nil {
				r.fn = nil
				fnUnsynced = append(fnUnsynced, failed{r, err})
			}
		}
	}
	writes := batch[:0:0]
	for _, r := range batch {
		if r.h != nil || r.fn != nil {
			writes = append(writes, r)
		}
	}
	if len(writes) > 0 {
		s.commitWrites(writes)
	}
	for _, f := range unsynced {
		f.r.herr = f.err
	}
	for _, f := range fnUnsynced {
		f.r.err = f.err
	}
}

// commitWrites is commitBatch once the syncs are done.
func (s *stmts) commitWrites(batch []*writeReq) {
	if len(batch) == 1 {
		r := batch[0]
		r.err, r.herr = s.writeWith(r.ctx, r.h, r.fn)
		return
	}
	all := func(p *db.Prepared) error {
		for _, r := range batch {
			if r.h != nil {
				if err := r.h.write(r.h.ctx, p); err != nil {
					return err
				}
			}
			if r.fn != nil {
				if err := r.fn(p); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if s.inTx(context.WithoutCancel(batch[0].ctx), all) == nil {
		return
	}
	for _, r := range batch {
		r.err, r.herr = s.writeWith(r.ctx, r.h, r.fn)
	}
}
