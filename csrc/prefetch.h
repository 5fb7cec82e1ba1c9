/* The next epochs' orders drawn on a second thread while this epoch trains (trainer.pyx).
 *
 * A shuffled epoch starts with numpy's permutation of its samples, drawn from the model's
 * generator: about 6 ns per sample, which for W1 (200 samples, 4 steps of 0.3 us) is 60%
 * of the step. The draws depend on nothing but the generator, so a producer thread can make
 * them ahead, in the same order, into a ring of `slots` orders, while the trainer trains;
 * the trainer copies each epoch's order out of the ring when the epoch starts. The ring
 * holds up to 64 orders (at most about 1 MB), so that a producer far ahead can sleep. The
 * producer draws exactly `total` orders, so the generator ends where the single thread
 * leaves it; a run stopped early by a signal stops it, and the generator is put where the
 * orders taken left it (`marks`: the count of draws before each order; trainer_plan.pxi). The generator is the run's private copy
 * (trainer_lend.pxi): nobody else draws from it meanwhile. Waiting spins briefly, then
 * yields the core (the machine may have fewer free cores than threads).
 *
 * Where there are no POSIX threads (or C11 atomics), MG_HAVE_PREFETCH is 0 and the trainer
 * draws on its own thread.
 */
#ifndef MICROGRADNET_PREFETCH_H
#define MICROGRADNET_PREFETCH_H

#include <stdint.h>
#include <string.h>

#if defined(__unix__) || defined(__APPLE__)
#  if !defined(__STDC_NO_ATOMICS__)
#    define MG_HAVE_PREFETCH 1
#  endif
#endif
#ifndef MG_HAVE_PREFETCH
#  define MG_HAVE_PREFETCH 0
#endif

typedef void (*mg_perm_fn)(void *rng, int64_t *out, Py_ssize_t n);

#if MG_HAVE_PREFETCH
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <stdatomic.h>
#if defined(__x86_64__) || defined(__i386__)
#  include <immintrin.h>
#  define MG_PAUSE() _mm_pause()
#else
#  define MG_PAUSE() ((void)0)
#endif

typedef struct {
    pthread_t thread;
    mg_perm_fn perm;
    void *rng;
    int64_t *ring;      /* slots x n */
    Py_ssize_t n;
    long long slots;
    long long total;    /* orders to draw */
    atomic_llong produced;  /* orders drawn so far */
    atomic_llong taken;     /* orders the trainer has copied out (their slots are free) */
    atomic_int stop;        /* set when the run stops early (a signal): draw no more */
    int64_t *marks;         /* when set, marks[e % slots] = *counter just before order e */
    const int64_t *counter; /* (the draws made so far: where order e's draws start) */
} mg_prefetch;

/* The trainer waits for an order: it is late, so spin, then yield the core. */
static void mg_prefetch_wait(atomic_llong *v, long long above)
{
    int spins = 0;
    while (atomic_load_explicit(v, memory_order_acquire) <= above) {
        if (++spins < 256)
            MG_PAUSE();
        else
            sched_yield();
    }
}

/* The producer waits for a free slot: it is ahead by a full ring, so it sleeps (20 us at a
 * time) rather than keep the second core busy for nothing; it gives up when told to stop. */
static void mg_prefetch_wait_slot(atomic_llong *v, long long above, atomic_int *stop)
{
    int spins = 0;
    struct timespec nap = {0, 20000};
    while (atomic_load_explicit(v, memory_order_acquire) <= above
           && !atomic_load_explicit(stop, memory_order_relaxed)) {
        if (++spins < 64)
            MG_PAUSE();
        else
            nanosleep(&nap, NULL);
    }
}

static void *mg_prefetch_main(void *arg)
{
    mg_prefetch *p = (mg_prefetch *)arg;
    long long e;
    for (e = 0; e < p->total; e++) {
        /* slot e % slots is free once order e - slots has been taken */
        mg_prefetch_wait_slot(&p->taken, e - p->slots, &p->stop);
        if (atomic_load_explicit(&p->stop, memory_order_relaxed))
            break;
        if (p->marks)
            p->marks[e % p->slots] = *p->counter;
        p->perm(p->rng, p->ring + (e % p->slots) * p->n, p->n);
        atomic_store_explicit(&p->produced, e + 1, memory_order_release);
    }
    return NULL;
}

/* 1 when the producer runs; 0 when no thread could be made (the caller draws itself) */
static int mg_prefetch_start(mg_prefetch *p, mg_perm_fn perm, void *rng, int64_t *ring,
                             Py_ssize_t n, long long slots, long long total, int64_t *marks,
                             const int64_t *counter)
{
    p->marks = marks;
    p->counter = counter;
    p->perm = perm;
    p->rng = rng;
    p->ring = ring;
    p->n = n;
    p->slots = slots;
    p->total = total;
    atomic_store(&p->produced, 0);
    atomic_store(&p->taken, 0);
    atomic_store(&p->stop, 0);
    return pthread_create(&p->thread, NULL, mg_prefetch_main, p) == 0;
}

/* Order e (0-based within the run) copied into out, its slot given back */
static void mg_prefetch_take(mg_prefetch *p, long long e, int64_t *out)
{
    mg_prefetch_wait(&p->produced, e);
    memcpy(out, p->ring + (e % p->slots) * p->n, (size_t)p->n * sizeof(int64_t));
    atomic_store_explicit(&p->taken, e + 1, memory_order_release);
}

static void mg_prefetch_join(mg_prefetch *p) { pthread_join(p->thread, NULL); }

/* The run stopped before taking every order: the producer draws no more (join it next) */
static void mg_prefetch_stop(mg_prefetch *p) { atomic_store(&p->stop, 1); }

/* The orders drawn (after the join: all it will draw) */
static long long mg_prefetch_produced(mg_prefetch *p) { return atomic_load(&p->produced); }

#else
typedef struct { int unused; } mg_prefetch;
static int mg_prefetch_start(mg_prefetch *p, mg_perm_fn perm, void *rng, int64_t *ring,
                             Py_ssize_t n, long long slots, long long total, int64_t *marks,
                             const int64_t *counter)
{
    (void)p; (void)perm; (void)rng; (void)ring; (void)n; (void)slots; (void)total;
    (void)marks; (void)counter;
    return 0;
}
static void mg_prefetch_take(mg_prefetch *p, long long e, int64_t *out)
{
    (void)p; (void)e; (void)out;
}
static void mg_prefetch_join(mg_prefetch *p) { (void)p; }
static void mg_prefetch_stop(mg_prefetch *p) { (void)p; }
static long long mg_prefetch_produced(mg_prefetch *p) { (void)p; return 0; }
#endif

#endif /* MICROGRADNET_PREFETCH_H */
