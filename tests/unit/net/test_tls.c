/* engine/net/tls.c: the trust store shared between threads. A store on the system bundle is
 * parsed at the first session only, once, also when two threads start sessions at the same
 * time; a CA file is parsed at creation and a bad one is refused there; contexts keep the
 * store alive after its creator lets it go. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "err.h"
#include "t.h"
#include "tls.h"

#define ROUNDS 40

struct worker {
    struct hd_tls_ctx *ctx;
    pthread_barrier_t *bar;
    size_t out; /* ClientHello bytes produced */
    int failed;
};

static int sink(const uint8_t *data, size_t n, void *user_data)
{
    struct worker *w = user_data;
    (void)data;
    w->out += n;
    return 0;
}

static void *work(void *arg)
{
    struct worker *w = arg;

    pthread_barrier_wait(w->bar);
    for (int i = 0; i < ROUNDS; i++) {
        struct hd_tls *t;
        size_t before = w->out;
        if (hd_tls_new(&t, w->ctx, i % 2 ? "h1.fedi.test" : "127.0.0.1", sink, w) != 0) {
            w->failed++;
            continue;
        }
        hd_tls_feed(t, NULL, 0);
        if (hd_tls_handshake(t) != 1 || w->out == before) /* a ClientHello, then "need input" */
            w->failed++;
        hd_tls_free(t);
    }
    hd_tls_thread_cleanup();
    return NULL;
}

int main(void)
{
    static const char bundle[] = "/etc/ssl/certs/ca-certificates.crt";
    struct hd_tls_trust *tr;
    struct hd_tls_ctx *ctx[2];
    struct worker w[2];
    pthread_t tid[2];
    pthread_barrier_t bar;

    if (access(bundle, R_OK) != 0) {
        fprintf(stderr, "skip: no system CA bundle (%s)\n", bundle);
        return 77;
    }
    /* A CA file that does not exist, or is not PEM: refused at creation. */
    T_EQ_INT(hd_tls_trust_new(&tr, "/nonexistent/ca.pem"), HD_ERR_TLS);
    {
        char junk[] = "/tmp/hd-tls-junk.XXXXXX";
        int fd = mkstemp(junk);
        T_OK(fd >= 0);
        T_EQ_INT(write(fd, "not a certificate\n", 18), 18);
        close(fd);
        T_EQ_INT(hd_tls_trust_new(&tr, junk), HD_ERR_TLS);
        unlink(junk);
    }
    /* A CA file: parsed at creation. */
    T_EQ_INT(hd_tls_trust_new(&tr, bundle), 0);
    T_EQ_INT(hd_tls_trust_loaded(tr), 1);
    hd_tls_trust_free(tr);

    /* The system bundle: nothing parsed until the first session. */
    T_EQ_INT(hd_tls_trust_new(&tr, NULL), 0);
    T_EQ_INT(hd_tls_trust_loaded(tr), 0);
    T_EQ_INT(hd_tls_ctx_new_shared(&ctx[0], tr), 0);
    T_EQ_INT(hd_tls_ctx_new_shared(&ctx[1], tr), 0);
    T_EQ_INT(hd_tls_trust_loaded(tr), 0);
    hd_tls_trust_free(tr); /* the contexts hold it */
    T_EQ_INT(pthread_barrier_init(&bar, NULL, 2), 0);
    for (int i = 0; i < 2; i++) {
        w[i] = (struct worker){.ctx = ctx[i], .bar = &bar};
        T_EQ_INT(pthread_create(&tid[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < 2; i++)
        T_EQ_INT(pthread_join(tid[i], NULL), 0);
    pthread_barrier_destroy(&bar);
    T_EQ_INT(hd_tls_trust_loaded(tr), 1);
    for (int i = 0; i < 2; i++) {
        T_EQ_INT(w[i].failed, 0);
        T_OK(w[i].out > 100);
    }
    hd_tls_ctx_free(ctx[0]);
    hd_tls_ctx_free(ctx[1]);

    /* A context on a store of its own. */
    T_EQ_INT(hd_tls_ctx_new(&ctx[0], NULL), 0);
    w[0] = (struct worker){.ctx = ctx[0], .bar = NULL};
    {
        struct hd_tls *t;
        T_EQ_INT(hd_tls_new(&t, ctx[0], "h1.fedi.test", sink, &w[0]), 0);
        hd_tls_feed(t, NULL, 0);
        T_EQ_INT(hd_tls_handshake(t), 1);
        T_OK(w[0].out > 100);
        hd_tls_free(t);
    }
    hd_tls_ctx_free(ctx[0]);
    hd_tls_thread_cleanup();
    printf("ok %d checks\n", t_checks);
    return 0;
}
