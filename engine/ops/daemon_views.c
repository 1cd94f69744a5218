/* The node summary publisher (daemon_views.h). */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "daemon_views.h"
#include "err.h"
#include "log.h"
#include "metrics_render.h"
#include "views.h"

struct hd_daemon_views {
    struct hd_store *st;
    struct hd_metrics *m;
    struct hd_cluster_node *node;
    char name[65];
    pthread_t tid;
    _Atomic int stop;
};

/* One summary: the host view of its top hosts, with deliveries per second since the last. */
static void publish(struct hd_daemon_views *v, uint64_t *last_done, uint64_t *last_ms)
{
    char *s = NULL;
    size_t len = 0;
    json_t *view, *totals;
    uint64_t now = hd_wall_ms(), done;
    double rate = 0;
    int rc;

    if (hd_metrics_render_hosts_json(v->m, v->st, HD_CLUSTER_VIEWS_HOSTS, &s, &len))
        return;
    view = json_loadb(s, len, 0, NULL);
    free(s);
    totals = json_object_get(view, "totals");
    if (!totals) {
        json_decref(view);
        return;
    }
    done = (uint64_t)json_integer_value(json_object_get(totals, "delivered"));
    if (*last_ms && now > *last_ms && done >= *last_done)
        rate = (double)(done - *last_done) * 1000.0 / (double)(now - *last_ms);
    *last_done = done;
    *last_ms = now;
    json_object_set_new(totals, "deliveries_per_s", json_real(rate));
    rc = hd_cluster_views_put(hd_cluster_node_conn(v->node), v->name, view);
    if (rc)
        HD_LOG(HD_LOG_DEBUG, "cluster", "msg=\"cannot put the node summary\" err=\"%s\"",
               hd_strerror(rc));
    json_decref(view);
}

static void *views_main(void *arg)
{
    struct hd_daemon_views *v = arg;
    uint64_t last_done = 0, last_ms = 0;

    while (!atomic_load(&v->stop)) {
        publish(v, &last_done, &last_ms);
        for (int i = 0; i < HD_CLUSTER_VIEWS_PERIOD_MS / 100 && !atomic_load(&v->stop); i++) {
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

int hd_daemon_views_start(struct hd_store *st, struct hd_metrics *m, struct hd_cluster_node *node,
                          const char *name, struct hd_daemon_views **out)
{
    struct hd_daemon_views *v;
    int rc;

    *out = NULL;
    if (!node)
        return 0;
    v = calloc(1, sizeof(*v));
    if (!v)
        return -ENOMEM;
    v->st = st;
    v->m = m;
    v->node = node;
    snprintf(v->name, sizeof(v->name), "%s", name);
    rc = -pthread_create(&v->tid, NULL, views_main, v);
    if (rc) {
        HD_LOG(HD_LOG_ERROR, "cluster", "msg=\"cannot start the summary thread\" err=\"%s\"",
               hd_strerror(rc));
        free(v);
        return rc;
    }
    *out = v;
    return 0;
}

void hd_daemon_views_stop(struct hd_daemon_views *v)
{
    if (!v)
        return;
    atomic_store(&v->stop, 1);
    pthread_join(v->tid, NULL);
    free(v);
}
