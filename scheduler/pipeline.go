package scheduler

import (
	"context"
	"slices"
	"time"

	"github.com/schedulerd/schedulerd/store"
)

// page is one dequeue transaction of a round: what it read and decided, and the outcome of
// its writes. Until done is closed, only the writing goroutine touches the fields below done,
// because a retry on locked rows decides again and sets them anew.
type page struct {
	d     *store.OpenDequeue
	start time.Time
	done  chan struct{}

	held       Holds             // the round's holds once this page decided
	read       []store.Candidate // the candidates decided on
	refusals   []store.Refusal
	admissions []store.Admission
	err        error
}

// pipeline runs a scheduler's dequeues in order, but lets the writes and COMMIT of one run
// on their connection while the next ones read, decide and write on others. The database
// then works on several transactions at once, on every core it has, instead of waiting for
// the scheduler between them. Writes that overlap touch different job and run rows, and
// wait for each other only at the quota and model rows, which each locks at the end of
// its batch. At most maxWriting dequeues write at a time, so a scheduler holds at most
// maxWriting+2 pooled connections, one of them for the overlap lock. Their runs reach the
// dispatcher in dequeue order.
type pipeline struct {
	s        *Scheduler
	writing  []*page // oldest first
	admitted int     // jobs admitted by the dequeues that committed

	// lock is the overlap lock (store.OverlapLock), held from the first round that may
	// overlap until the end of the Drain. tried is set once the Drain requested it, and
	// checked is when the lock's session last responded to a ping.
	lock    *store.OverlapLock
	tried   bool
	checked time.Time
}

// lockCheckInterval is how often a Drain checks that the session of its overlap lock is
// still alive. For up to that long after the session ends, another scheduler may take the
// lock while this one still overlaps, which costs throughput, not correctness.
const lockCheckInterval = time.Second

// maxWriting is the most dequeues whose writes run at once. Two measured best on 2 cores
// (bench/results/AB-2026-12-06-pipeline.md).
const maxWriting = 2

// decided holds the counts of a page's first decision, for the round's loop, which may not
// read the page's fields while its writes run.
type decided struct {
	read, admit int
	// starving is set when a candidate read is a GPU job past the starvation bound. The first
	// decision may admit it on quota and model rows that the writes in flight have not yet
	// changed, and the retry on locked rows may then refuse it and hold capacity back for it.
	starving bool
}

// dequeue begins one dequeue of round r that admits at most maxAdmit jobs, decides on what
// it read, and starts its writes once fewer than maxWriting dequeues write. It returns the
// page, whose writes may still run, and what it decided.
func (p *pipeline) dequeue(ctx context.Context, r *round, maxAdmit int) (*page, decided, error) {
	s := p.s
	// Decisions add to clones of r.held, never to r.held itself, so a retry of this dequeue
	// on locked rows reads the window with the same shares.
	window := store.CandidateWindow{Limit: r.limit, After: r.after, OnlyWithRoom: r.after != nil,
		StarvationBound: s.cfg.Policy.StarvationBound, Held: r.held.Quotas}
	pg := &page{start: time.Now(), done: make(chan struct{}), held: r.held}
	d, err := s.store.BeginDequeue(ctx, window)
	if err != nil {
		return nil, decided{}, err
	}
	pg.d = d
	decisions, _ := d.Decide(func(snap store.Snapshot) ([]store.Decision, []store.Refusal) {
		// A retry on locked rows decides again, from the round's holds as they were.
		pg.held, pg.read = r.held.Clone(), snap.Candidates
		decisions, refusals := s.cfg.Policy.DecideUpTo(snap, maxAdmit, pg.held)
		pg.refusals = refusals
		return decisions, refusals
	})
	snap := d.Snapshot()
	first := decided{read: len(snap.Candidates), admit: len(decisions),
		starving: slices.ContainsFunc(snap.Candidates, func(c store.Candidate) bool {
			return s.cfg.Policy.starving(c, snap.Now)
		})}

	for len(p.writing) >= maxWriting {
		if err := p.waitOldest(); err != nil {
			d.Close(ctx)
			return nil, first, err
		}
	}
	p.writing = append(p.writing, pg)
	go pg.write(ctx, s)
	return pg, first, nil
}

// write commits the page's dequeue and records its duration and, once it committed, its
// decisions. Refusals of a transaction that rolled back are not counted.
func (pg *page) write(ctx context.Context, s *Scheduler) {
	defer close(pg.done)
	pg.admissions, pg.err = pg.d.Commit(ctx)
	s.cfg.Metrics.ObserveDequeue(time.Since(pg.start))
	if pg.err != nil {
		return
	}
	results := make([]string, len(pg.refusals))
	for i, r := range pg.refusals {
		results[i] = refusalResult(r.Reason)
	}
	s.cfg.Metrics.Admissions(len(pg.admissions), results)
}

// mayOverlap reports whether the next round may read while writes run, which is only
// while this scheduler holds the overlap lock. The first call of a Drain requests the
// lock, and a scheduler that did not get it, or whose lock's session ended, keeps its
// rounds apart until its Drain ends. A failed request only logs: the lock is an
// optimization, and the rounds run correctly without it.
func (p *pipeline) mayOverlap(ctx context.Context) bool {
	if !p.tried {
		p.tried = true
		lock, err := p.s.store.TryOverlapLock(ctx)
		if err != nil {
			p.s.cfg.Logger.Warn("overlap lock request failed, so dequeue rounds run one at a time", "err", err)
			return false
		}
		p.lock, p.checked = lock, time.Now()
	}
	if p.lock != nil && time.Since(p.checked) >= lockCheckInterval {
		p.checked = time.Now()
		if !p.lock.Alive(ctx) {
			p.s.cfg.Logger.Warn("overlap lock lost with its session, so dequeue rounds run one at a time")
			p.release(ctx)
		}
	}
	return p.lock != nil
}

// release gives the overlap lock back, if the pipeline holds it.
func (p *pipeline) release(ctx context.Context) {
	if p.lock != nil {
		p.lock.Release(ctx)
		p.lock = nil
	}
}

// wait waits for every write in flight, oldest first, and returns the first error.
func (p *pipeline) wait() error {
	var first error
	for len(p.writing) > 0 {
		if err := p.waitOldest(); first == nil {
			first = err
		}
	}
	return first
}

// waitOldest waits for the oldest write in flight, hands its runs to the dispatcher and
// returns its error. The next round's first read is widened when that page refused
// candidates.
func (p *pipeline) waitOldest() error {
	pg := p.writing[0]
	p.writing = p.writing[1:]
	<-pg.done
	if pg.err != nil {
		return pg.err
	}
	p.s.wide = len(pg.refusals) > 0
	p.admitted += len(pg.admissions)
	p.s.admitted(pg.admissions)
	return nil
}
