/* team.h: how many threads train, chunk by chunk, when the caller left the count to the
 * engine (fnn_train_cfg.adapt).  Included once, by fastnn.h.
 *
 * A team meets at a spin barrier once or more per mini-batch, so one member that the system
 * preempts (another process busy on its core) stalls the others: on a 2-core machine with one
 * core taken, W1 with 2 threads ran 1.3 to 13 times slower than with 1.  The controller runs
 * the mini-batches in chunks of a few milliseconds, each on a team from a ladder (T, T/2, ...,
 * 1) and times them:
 *   - after a chunk whose threads spent more than FNN_TEAM_WAIT_HI of their time waiting at
 *     the barrier, it tries the next smaller team for one chunk and keeps it if it ran faster
 *     per mini-batch;
 *   - while on a smaller team, it tries the next larger one now and then (a short chunk), and
 *     goes back up if that ran faster: the machine may have gone quiet;
 *   - a try that loses doubles the wait before the next try the same way (FNN_TEAM_BACKOFF_*
 *     seconds), so a machine that stays busy (or idle) costs a try every few seconds at most.
 * A chunk's time is its mini-batches' alone: the copies a new team needs (the K split's
 * private columns) are made before the clock starts.
 * What it settled on is kept between calls (a process-wide memory), so that a call of one
 * epoch starts where the last one ended.  The team changes only between mini-batches, and the
 * paths give the same sums for any team (the K split's fixed blocks, the rows path's fixed
 * splits), so the weights do not depend on the choices. */

#ifndef FNN_TEAM_H
#define FNN_TEAM_H

#define FNN_TEAM_LADDER 8          /* T, ceil(T/2), ... down to 1: at most 8 rungs (T <= 128) */
#define FNN_TEAM_WAIT_HI 0.25      /* fraction of the team's time spent waiting */
#define FNN_TEAM_GAIN_DOWN 0.95    /* a smaller team must take at most this fraction of the
                                    * time per mini-batch to be kept, */
#define FNN_TEAM_GAIN_UP 0.85      /* a larger one this (one preemption can flatter a try) */
#define FNN_TEAM_CHUNK_S 0.004     /* a chunk's target length, tries included */
#define FNN_TEAM_BACKOFF_MIN 0.5   /* seconds before the first try after a settled choice */
#define FNN_TEAM_BACKOFF_MAX 4.0   /* a busy machine then pays one 4 ms try every 4 s (about
                                    * 0.2 %), and an idle one gets its cores back within 4 s */

/* the process-wide memory: the team the last call settled on, the earliest time of the next
 * try down and up, and the current back-off of each */
typedef struct {
    int team;
    double next_down, next_up, back_down, back_up;
} fnn_team_memory;

static inline fnn_team_memory *fnn_team_mem(void) {
    static fnn_team_memory mem = {0, 0.0, 0.0, FNN_TEAM_BACKOFF_MIN, FNN_TEAM_BACKOFF_MIN};
    return &mem;
}

typedef struct {
    int adapt;                     /* 0: always ladder[0]; 1: adapt; 2: tests: switch every
                                    * chunk, chunks of 3 mini-batches */
    int n, ladder[FNN_TEAM_LADDER];
    int cur, probe;                /* rungs: settled, being tried (-1: none) */
    double est[FNN_TEAM_LADDER];   /* seconds per mini-batch on each rung in this call (0: not
                                    * measured) */
    int64_t span;                  /* mini-batches in the next chunk */
    int64_t chunks;                /* chunks run (the test schedule's counter) */
    fnn_team_memory mem;           /* this call's copy of the memory */
    /* for the epoch's statistics: sum of team x mini-batches, mini-batches, wait and time */
    double team_batches, waited_s, busy_s;
    int64_t batches;
} fnn_team_ctl;

static inline void fnn_team_start(fnn_team_ctl *c, int T, int adapt) {
    memset(c, 0, sizeof(*c));
    c->adapt = T > 1 ? adapt : 0;
    for (int t = T; c->n < FNN_TEAM_LADDER; t = (t + 1) / 2) {
        c->ladder[c->n++] = t;
        if (t == 1) break;
    }
    c->probe = -1;
    c->span = c->adapt == 2 ? 3 : 64;
#ifdef FASTNN_HAVE_OPENMP
#pragma omp critical(fnn_team_memory)
#endif
    c->mem = *fnn_team_mem();
    if (c->mem.back_down <= 0) c->mem.back_down = FNN_TEAM_BACKOFF_MIN;
    if (c->mem.back_up <= 0) c->mem.back_up = FNN_TEAM_BACKOFF_MIN;
    if (c->adapt == 1 && c->mem.team > 0)   /* start on the rung the last call settled on */
        for (int i = 0; i < c->n; i++)
            if (c->ladder[i] <= c->mem.team) { c->cur = i; break; }
}

/* the team of the next chunk and its length (at most `left` mini-batches) */
static inline int fnn_team_next(fnn_team_ctl *c, int64_t left, int64_t *span) {
    int rung = c->cur;
    int64_t s = c->span;
    if (c->adapt == 2) {
        rung = (int)(c->chunks % c->n);
    } else if (c->adapt == 1 && c->probe >= 0) {
        rung = c->probe;
    } else if (c->adapt == 0) {
        s = left;
    }
    *span = s < left ? s : left;
    return c->ladder[rung];
}

/* after the chunk: `batches` mini-batches on `team` threads in `dt` seconds, in which the
 * threads waited `waited` seconds in all at the barrier */
static inline void fnn_team_done(fnn_team_ctl *c, int team, int64_t batches, double dt,
                                 double waited) {
    const double now = fnn_now();
    c->team_batches += (double)team * (double)batches;
    c->batches += batches;
    c->waited_s += waited;
    c->busy_s += dt * team;
    c->chunks++;
    if (c->adapt != 1 || batches <= 0) return;
    int rung = c->probe >= 0 ? c->probe : c->cur;
    const double per = dt / (double)batches;
    /* a try's own figure (the rung may have run under other conditions); the settled rung's
     * smoothed over its last chunks */
    c->est[rung] = c->probe >= 0 || c->est[rung] <= 0 ? per : 0.5 * (c->est[rung] + per);
    if (c->probe >= 0) {            /* a try: keep it if it ran faster per mini-batch */
        const int down = c->probe > c->cur;
        if (c->est[c->probe] < (down ? FNN_TEAM_GAIN_DOWN : FNN_TEAM_GAIN_UP) * c->est[c->cur]) {
            c->cur = c->probe;
            if (down) c->mem.back_down = FNN_TEAM_BACKOFF_MIN;
            else c->mem.back_up = FNN_TEAM_BACKOFF_MIN;
            /* a new team: give the way back a moment before it is tried */
            if (down) c->mem.next_up = now + c->mem.back_up;
            else c->mem.next_down = now;
        } else if (down) {
            c->mem.back_down = fmin(2 * c->mem.back_down, FNN_TEAM_BACKOFF_MAX);
            c->mem.next_down = now + c->mem.back_down;
        } else {
            c->mem.back_up = fmin(2 * c->mem.back_up, FNN_TEAM_BACKOFF_MAX);
            c->mem.next_up = now + c->mem.back_up;
        }
        c->probe = -1;
    } else {
        const double frac = dt > 0 ? waited / (dt * team) : 0;
        if (c->cur + 1 < c->n && frac > FNN_TEAM_WAIT_HI && now >= c->mem.next_down) {
            c->probe = c->cur + 1;
        } else if (c->cur > 0 && now >= c->mem.next_up) {
            c->probe = c->cur - 1;
        }
        /* chunks of about FNN_TEAM_CHUNK_S on the settled team */
        const double want = FNN_TEAM_CHUNK_S / (per > 0 ? per : 1e-6);
        c->span = want < 8 ? 8 : want > 65536 ? 65536 : (int64_t)want;
    }
    c->mem.team = c->ladder[c->cur];
}

/* the call is over: what it settled on is the next call's start */
static inline void fnn_team_finish(const fnn_team_ctl *c) {
    if (c->adapt != 1) return;
#ifdef FASTNN_HAVE_OPENMP
#pragma omp critical(fnn_team_memory)
#endif
    *fnn_team_mem() = c->mem;
}

#endif
