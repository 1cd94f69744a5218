/* The run's wake-up for new work (runner.h, hd_run_kick): a generation counter the loop
 * threads compare with the one they last acted on, and their eventfds, written so that a
 * thread waiting in its ring wakes at once. The eventfds are registered by hd_run while its
 * threads live, under the mutex that hd_run_kick takes too. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "runner.h"
#include "sched_impl.h"

struct hd_run_kick {
    _Atomic uint64_t gen;
    pthread_mutex_t mu;
    int *efds;
    unsigned n;
};

int hd_run_kick_new(struct hd_run_kick **out)
{
    struct hd_run_kick *k = calloc(1, sizeof(*k));

    if (!k)
        return -ENOMEM;
    if (pthread_mutex_init(&k->mu, NULL) != 0) {
        free(k);
        return -ENOMEM;
    }
    atomic_init(&k->gen, 0);
    *out = k;
    return 0;
}

void hd_run_kick_free(struct hd_run_kick *k)
{
    if (!k)
        return;
    pthread_mutex_destroy(&k->mu);
    free(k->efds);
    free(k);
}

void hd_run_kick(struct hd_run_kick *k)
{
    uint64_t one = 1;

    if (!k)
        return;
    atomic_fetch_add(&k->gen, 1);
    pthread_mutex_lock(&k->mu);
    for (unsigned i = 0; i < k->n; i++)
        if (k->efds[i] >= 0 && write(k->efds[i], &one, sizeof(one)) < 0) {
            /* EAGAIN: the counter is full, the thread has a wake-up pending anyway */
        }
    pthread_mutex_unlock(&k->mu);
}

uint64_t hd_sched_kick_gen(const struct hd_run_kick *k)
{
    return k ? atomic_load(&k->gen) : 0;
}

int hd_sched_kick_attach(struct hd_run_kick *k, const int *efds, unsigned n)
{
    int *v = NULL;

    if (!k)
        return 0;
    if (n) {
        v = malloc(n * sizeof(*v));
        if (!v)
            return -ENOMEM;
        for (unsigned i = 0; i < n; i++)
            v[i] = efds[i];
    }
    pthread_mutex_lock(&k->mu);
    free(k->efds);
    k->efds = v;
    k->n = n;
    pthread_mutex_unlock(&k->mu);
    return 0;
}
