/* The clock by which a captured run polls for signals (trainer_step.pxi): a monotonic count
 * of nanoseconds where the platform has one, else processor time (the run is busy). */
#ifndef MICROGRADNET_POLL_H
#define MICROGRADNET_POLL_H

#include <time.h>

static inline long long mg_clock_ns(void)
{
#if defined(CLOCK_MONOTONIC)
    struct timespec t;
    if (clock_gettime(CLOCK_MONOTONIC, &t) == 0)
        return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
#endif
    return (long long)((double)clock() * (1e9 / CLOCKS_PER_SEC));
}

#endif /* MICROGRADNET_POLL_H */
