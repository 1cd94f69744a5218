/* Metrics: sharded counters from several threads, histograms and quantiles, per-host cells,
 * store-derived gauges, top-N per-host series, and promtool's check when it is installed. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "hostpol.h"
#include "ingest.h"
#include "keyadd.h"
#include "keys.h"
#include "metrics_render.h"
#include "store.h"
#include "t.h"

struct worker {
    struct hd_metrics *m;
    unsigned idx;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    struct hd_mhost *h = hd_metrics_host(w->m, "shared.example");
    for (int i = 0; i < 100000; i++) {
        hd_metrics_add(w->m, w->idx, HD_MC_DONE, 1);
        hd_metrics_observe(w->m, w->idx, HD_MH_LATENCY, 1000 + (uint64_t)i % 5000);
        hd_mhost_result(h, 1, 202, 2000, NULL);
    }
    return NULL;
}

static int has(const char *text, const char *needle)
{
    return strstr(text, needle) != NULL;
}

int main(void)
{
    struct hd_metrics *m;
    struct worker w[4];
    pthread_t tid[4];
    char *out;
    size_t len;
    uint64_t counts[HD_METRICS_NBUCKETS] = {0};
    const char *data = getenv("HD_TEST_DATA");

    /* NULL registry: every call is a no-op */
    hd_metrics_add(NULL, 0, HD_MC_DONE, 1);
    T_OK(hd_metrics_host(NULL, "x") == NULL);
    hd_mhost_result(NULL, 1, 200, 1, NULL);

    T_EQ_INT(hd_metrics_new(&m), 0);
    for (unsigned i = 0; i < 4; i++) {
        w[i].m = m;
        w[i].idx = i;
        T_EQ_INT(pthread_create(&tid[i], NULL, work, &w[i]), 0);
    }
    for (unsigned i = 0; i < 4; i++)
        pthread_join(tid[i], NULL);
    T_EQ_INT(hd_metrics_counter(m, HD_MC_DONE), 400000);
    T_OK(hd_metrics_host(m, "shared.example") == hd_metrics_host(m, "shared.example"));

    /* quantiles: 100 observations in the 1..2.5 ms bucket, 1 in the 5..10 s one */
    counts[5] = 100;
    counts[17] = 1;
    T_OK(hd_metrics_quantile_us(counts, 0.5) > 1000 && hd_metrics_quantile_us(counts, 0.5) < 2500);
    T_OK(hd_metrics_quantile_us(counts, 0.999) > 5e6);
    T_EQ_INT(hd_metrics_bucket_bound_us(0), 50);
    memset(counts, 0, sizeof(counts));
    T_OK(hd_metrics_quantile_us(counts, 0.5) == 0);

    hd_metrics_gauge_add(m, 0, HD_MG_IN_FLIGHT, 5);
    hd_metrics_gauge_add(m, 1, HD_MG_IN_FLIGHT, 2);
    hd_metrics_gauge_add(m, 1, HD_MG_IN_FLIGHT, -1);
    T_EQ_INT(hd_metrics_gauge(m, HD_MG_IN_FLIGHT), 6);
    hd_metrics_gauge_set(m, 3, HD_MG_BREAKERS_OPEN, 2);
    hd_metrics_gauge_set(m, 3, HD_MG_BREAKERS_OPEN, 1);
    T_EQ_INT(hd_metrics_gauge(m, HD_MG_BREAKERS_OPEN), 1);
    hd_metrics_observe(m, 7, HD_MH_SIGN, 300);
    hd_metrics_observe(m, 8, HD_MH_COMMIT, 80000);

    /* without a store: live hosts only */
    {
        struct hd_mhost *h = hd_metrics_host(m, "q\"uote.example");
        hd_mhost_result(h, 2, 503, 100000, "HTTP 503");
        hd_mhost_set_breaker(h, HD_BREAKER_OPEN);
    }
    T_EQ_INT(hd_metrics_render(m, NULL, &out, &len), 0);
    T_OK(has(out, "herald_deliveries_total{outcome=\"done\"} 400000\n"));
    T_OK(has(out, "herald_in_flight 6\n"));
    T_OK(has(out, "herald_breakers_open 1\n"));
    T_OK(has(out, "herald_delivery_duration_seconds_bucket{le=\"+Inf\"} 400000\n"));
    T_OK(has(out, "herald_sign_duration_seconds_count 1\n"));
    T_OK(has(out, "herald_host_breaker{host=\"q\\\"uote.example\",state=\"open\"} 1\n"));
    T_OK(!has(out, "herald_queue_deliveries")); /* store series need a store */
    free(out);

    /* with a store: backlog per host, oldest age, top N */
    if (data) {
        char dir[] = "/tmp/hd-test-metrics-XXXXXX", path[512], *pem;
        struct hd_store *st;
        const char *why;
        struct hd_txn *txn;
        struct hd_counters c;
        struct hd_ingest_result r;
        T_OK(mkdtemp(dir) != NULL);
        snprintf(path, sizeof(path), "%s/db", dir);
        T_EQ_INT(hd_store_open(&st, path, 64), 0);
        snprintf(path, sizeof(path), "%s/keys/test-only-rsa2048.pem", data);
        pem = t_slurp(path, &len);
        T_OK(pem != NULL);
        T_EQ_INT(hd_keys_add(st, "https://a.example/u/al#key", "https://a.example/u/al", pem, len,
                             &why),
                 0);
        free(pem);
        T_EQ_INT(hd_store_begin(st, 1, &txn), 0);
        T_EQ_INT(hd_counters_get(st, txn, &c), 0);
        for (int i = 0; i < 5; i++) {
            char line[1024];
            snprintf(line, sizeof(line),
                     "{\"activity\":{\"id\":\"https://a.example/a/%d\",\"type\":\"Create\","
                     "\"actor\":\"https://a.example/u/al\"},\"inboxes\":["
                     "\"https://big.example/u/%d/inbox\",\"https://big.example/inbox\","
                     "\"https://mid.example/inbox%d\",\"https://small%d.example/inbox\"]}",
                     i, i, i % 2, i);
            T_EQ_INT(hd_ingest_envelope(st, txn, &c, line, strlen(line), 1000, &r), 0);
        }
        T_EQ_INT(hd_counters_put(st, txn, &c), 0);
        T_EQ_INT(hd_store_commit(txn), 0);

        hd_metrics_set_top_hosts(m, 2);
        T_EQ_INT(hd_metrics_render(m, st, &out, &len), 0);
        if (!has(out, "herald_queue_deliveries{state=\"pending\"} 20\n"))
            fprintf(stderr, "%s", out);
        T_OK(has(out, "herald_queue_deliveries{state=\"pending\"} 20\n"));
        T_OK(has(out, "herald_activities_total 5\n"));
        T_OK(has(out, "herald_host_backlog{host=\"big.example\"} 10\n"));
        T_OK(has(out, "herald_host_backlog{host=\"mid.example\"} 5\n"));
        T_OK(!has(out, "small0.example")); /* only the top 2 */
        T_OK(has(out, "herald_hosts 7\n"));
        T_OK(has(out, "herald_queue_oldest_age_seconds "));
        T_OK(!has(out, "herald_queue_oldest_age_seconds 0.000\n")); /* enqueued at t=1 s */

        /* promtool, when installed, must accept the whole output */
        if (access("/usr/bin/promtool", X_OK) == 0) {
            char cmd[1024], file[600];
            FILE *f;
            int rc;
            snprintf(file, sizeof(file), "%s/metrics.txt", dir);
            f = fopen(file, "w");
            T_OK(f != NULL);
            fwrite(out, 1, len, f);
            fclose(f);
            snprintf(cmd, sizeof(cmd), "promtool check metrics < %s", file);
            rc = system(cmd);
            if (rc != 0)
                T_FAIL("promtool check metrics failed on %s", file);
            unlink(file);
        } else {
            fprintf(stderr, "note: promtool not installed, format check skipped\n");
        }
        free(out);

        T_EQ_INT(hd_metrics_render_hosts_json(m, st, 3, &out, &len), 0);
        T_OK(has(out, "\"host\":\"big.example\""));
        T_OK(has(out, "\"backlog\":10"));
        T_OK(!has(out, "small4.example"));
        free(out);
        hd_store_close(st);
        snprintf(path, sizeof(path), "rm -rf %s", dir);
        T_EQ_INT(system(path), 0);
    }
    hd_metrics_free(m);
    T_DONE();
}
