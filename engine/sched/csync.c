/* FEP-8fcf Collection-Synchronization on followers-only Creates (see sched_impl.h).
 *
 * A Create whose activity or object names the actor's followers collection in to/cc and
 * names Public nowhere gets, on each host where the actor has followers (by the authority of
 * their ids, as FEP-8fcf and Mastodon define it), the header
 *   Collection-Synchronization: collectionId="C", url="U", digest="D"
 * where C and U come from the run's templates and D is the hex XOR of SHA-256 over those
 * followers' ids (store/collsync.h). The header is signed with the request. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collsync.h"
#include "err.h"
#include "sched_impl.h"

#define CSYNC_PART_MAX 2048 /* each expanded template */

static int is_public(const char *s)
{
    return s && (!strcmp(s, "https://www.w3.org/ns/activitystreams#Public") ||
                 !strcmp(s, "as:Public") || !strcmp(s, "Public"));
}

/* Scans o's to and cc: sets *pub when Public is named, *fol when followers is. */
static void scan_addr(json_t *o, const char *followers, int *pub, int *fol)
{
    static const char *const keys[] = {"to", "cc"};
    for (size_t k = 0; k < 2; k++) {
        json_t *v = json_object_get(o, keys[k]), *it;
        size_t i;
        if (json_is_string(v)) {
            *pub |= is_public(json_string_value(v));
            *fol |= !strcmp(json_string_value(v), followers);
        }
        json_array_foreach(v, i, it)
        {
            const char *s = json_string_value(it);
            *pub |= is_public(s);
            *fol |= s && !strcmp(s, followers);
        }
    }
}

/* Expands {actor} and {actor_enc} (percent-encoded) in tpl into out. Returns 0, or -1 when it
 * does not fit or the result could not be a quoted header parameter. */
static int expand(const char *tpl, const char *actor, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = tpl; *p;) {
        const char *rep = NULL;
        int enc = 0;
        if (!strncmp(p, "{actor}", 7)) {
            rep = actor;
            p += 7;
        } else if (!strncmp(p, "{actor_enc}", 11)) {
            rep = actor;
            enc = 1;
            p += 11;
        }
        if (!rep) {
            if (n + 1 >= cap)
                return -1;
            out[n++] = *p++;
            continue;
        }
        for (const unsigned char *r = (const unsigned char *)rep; *r; r++) {
            int plain = (*r >= 'a' && *r <= 'z') || (*r >= 'A' && *r <= 'Z') ||
                        (*r >= '0' && *r <= '9') || *r == '-' || *r == '.' || *r == '_' ||
                        *r == '~';
            if (n + 4 >= cap)
                return -1;
            if (enc && !plain)
                n += (size_t)snprintf(out + n, cap - n, "%%%02X", *r);
            else
                out[n++] = (char)*r;
        }
    }
    out[n] = 0;
    for (size_t i = 0; i < n; i++)
        if (out[i] == '"' || out[i] == '\\' || (unsigned char)out[i] < 0x20 || out[i] == 0x7f)
            return -1;
    return 0;
}

int hd_sched_csync_act(struct sthread *th, struct sact *a)
{
    const char *url_tpl = th->o->collection_sync_url, *fol_tpl = th->o->collection_sync_followers;
    char *cid = NULL, *url = NULL;
    int pub = 0, fol = 0, rc = 0;
    json_t *body, *obj;

    if (!url_tpl || !*url_tpl || a->kind != ACT_CREATE)
        return 0;
    cid = malloc(CSYNC_PART_MAX);
    url = malloc(CSYNC_PART_MAX);
    if (!cid || !url) {
        rc = -ENOMEM;
        goto out;
    }
    if (expand(fol_tpl && *fol_tpl ? fol_tpl : "{actor}/followers", a->actor, cid,
               CSYNC_PART_MAX) != 0 ||
        expand(url_tpl, a->actor, url, CSYNC_PART_MAX) != 0)
        goto out; /* cannot be stated in the header: none is sent */
    body = json_loadb(a->body, a->body_len, 0, NULL);
    if (!body)
        goto out;
    scan_addr(body, cid, &pub, &fol);
    obj = json_object_get(body, "object");
    if (json_is_object(obj))
        scan_addr(obj, cid, &pub, &fol);
    json_decref(body);
    if (pub || !fol)
        goto out;
    a->csync = malloc(strlen(cid) + strlen(url) + 40);
    if (!a->csync) {
        rc = -ENOMEM;
        goto out;
    }
    sprintf(a->csync, "collectionId=\"%s\", url=\"%s\", digest=\"", cid, url);
out:
    free(cid);
    free(url);
    return rc;
}

int hd_sched_csync_del(struct sthread *th, struct sdel *d)
{
    uint8_t dg[HD_COLLSYNC_DIGEST_LEN];
    struct hd_txn *txn;
    uint32_t count = 0;
    size_t pl;
    int rc;

    free(d->csync);
    d->csync = NULL;
    if (!d->act->csync)
        return 0;
    txn = hd_sched_rtxn(th);
    if (!txn)
        return HD_ERR_STORE;
    rc = hd_collsync_get(th->st, txn, d->act->actor, d->url.authority, strlen(d->url.authority),
                         &count, dg);
    if (rc || count == 0)
        return rc == HD_ERR_INVALID ? 0 : rc; /* no follower there: no header */
    pl = strlen(d->act->csync);
    d->csync = malloc(pl + 2 * HD_COLLSYNC_DIGEST_LEN + 2);
    if (!d->csync)
        return -ENOMEM;
    memcpy(d->csync, d->act->csync, pl);
    for (size_t i = 0; i < HD_COLLSYNC_DIGEST_LEN; i++)
        sprintf(d->csync + pl + 2 * i, "%02x", dg[i]);
    d->csync[pl + 2 * HD_COLLSYNC_DIGEST_LEN] = '"';
    d->csync[pl + 2 * HD_COLLSYNC_DIGEST_LEN + 1] = 0;
    return 0;
}
