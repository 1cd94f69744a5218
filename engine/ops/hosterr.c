/* Failures per host by class, read from the store (hosterr.h). */
#include <string.h>

#include "hostctl.h"
#include "hosterr.h"

int hd_hosterr_read(struct hd_store *st, struct hd_txn *txn, const char *host, uint64_t now_ms,
                    struct hd_errcounts *out)
{
    struct hd_errwin w;

    if (hd_live_err_get(st, txn, host, &w) != 0) {
        hd_errwin_counts(NULL, now_ms, out);
        return 0;
    }
    hd_errwin_counts(&w, now_ms, out);
    return out->total1h > 0;
}

static json_t *window_json(const uint32_t *n, uint64_t total, double secs)
{
    json_t *by = json_object();
    json_t *o;

    if (!by)
        return NULL;
    for (int k = 0; k < HD_EC__COUNT; k++) {
        if (!n[k])
            continue;
        json_object_set_new(by, hd_errclass_name(k),
                            json_pack("{s:I, s:f}", "count", (json_int_t)n[k], "per_s",
                                      secs > 0 ? n[k] / secs : 0.0));
    }
    o = json_pack("{s:f, s:I, s:f, s:o}", "seconds", secs, "total", (json_int_t)total, "per_s",
                  secs > 0 ? (double)total / secs : 0.0, "by_class", by);
    return o;
}

json_t *hd_hosterr_json(const struct hd_errcounts *c)
{
    json_t *a = window_json(c->n5m, c->total5m, c->secs5m);
    json_t *b = window_json(c->n1h, c->total1h, c->secs1h);

    if (!a || !b) {
        json_decref(a);
        json_decref(b);
        return NULL;
    }
    return json_pack("{s:o, s:o}", "5m", a, "1h", b);
}
