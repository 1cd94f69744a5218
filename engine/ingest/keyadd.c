/* Adding a signing key (see keyadd.h). */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "keyadd.h"
#include "keys.h"
#include "sign.h"

int hd_keys_add(struct hd_store *st, const char *key_id, const char *actor, const char *pem,
                size_t pem_len, const char **why)
{
    int type = 0, rc;
    unsigned bits = 0;

    *why = NULL;
    if (!*key_id || !*actor || strlen(key_id) > 500 || strlen(actor) > 500) {
        *why = "key id and actor must be non-empty and at most 500 bytes";
        return HD_ERR_INVALID;
    }
    rc = hd_key_check(pem, pem_len, &type, &bits, why);
    if (rc)
        return rc;
    return hd_keys_put(st, key_id, actor, type, bits, pem, pem_len, why);
}

struct hd_key_import {
    struct hd_store *st;
    struct hd_txn *txn; /* the open group, or NULL */
    size_t group, in_group;
    hd_key_import_bad_cb bad;
    void *user_data;
    struct hd_key_import_stats s;
};

int hd_key_import_new(struct hd_store *st, size_t group, hd_key_import_bad_cb bad,
                      void *user_data, struct hd_key_import **out)
{
    struct hd_key_import *imp = calloc(1, sizeof(*imp));

    *out = NULL;
    if (!imp)
        return -ENOMEM;
    imp->st = st;
    imp->group = group ? group : HD_KEY_IMPORT_GROUP;
    imp->bad = bad;
    imp->user_data = user_data;
    *out = imp;
    return 0;
}

static void report_bad(struct hd_key_import *imp, const char *why)
{
    imp->s.bad++;
    if (imp->bad)
        imp->bad(imp->s.lines, why, imp->user_data);
}

static int group_commit(struct hd_key_import *imp)
{
    int rc;
    if (!imp->txn)
        return 0;
    rc = hd_store_commit(imp->txn);
    imp->txn = NULL;
    if (rc == 0)
        imp->s.imported += imp->in_group;
    imp->in_group = 0;
    return rc;
}

int hd_key_import_line(struct hd_key_import *imp, const char *line, size_t len)
{
    const char *kid, *actor, *pem, *why = NULL;
    json_error_t jerr;
    json_t *o, *jp;
    unsigned bits = 0;
    int type = 0, rc;
    size_t i = 0;

    imp->s.lines++;
    while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
        i++;
    if (i == len)
        return 0;
    if (len > HD_KEY_IMPORT_LINE_MAX) {
        report_bad(imp, "line over 64 KiB");
        return 0;
    }
    o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(o)) {
        json_decref(o);
        report_bad(imp, "not a JSON object");
        return 0;
    }
    kid = json_string_value(json_object_get(o, "key_id"));
    actor = json_string_value(json_object_get(o, "actor"));
    jp = json_object_get(o, "pem");
    pem = json_string_value(jp);
    if (!kid || !actor || !pem) {
        json_decref(o);
        report_bad(imp, "\"key_id\", \"actor\" and \"pem\" must be strings");
        return 0;
    }
    if (!*kid || !*actor || strlen(kid) > 500 || strlen(actor) > 500) {
        why = "key id and actor must be non-empty and at most 500 bytes";
        rc = HD_ERR_INVALID;
    } else {
        rc = hd_key_check(pem, json_string_length(jp), &type, &bits, &why);
    }
    if (rc == 0 && !imp->txn) {
        rc = hd_store_begin(imp->st, 1, &imp->txn);
        if (rc) {
            imp->txn = NULL;
            goto out;
        }
    }
    if (rc == 0)
        rc = hd_keys_put_txn(imp->st, imp->txn, kid, actor, type, bits, pem,
                             json_string_length(jp), &why);
    if (rc == HD_ERR_INVALID || (rc && why)) {
        report_bad(imp, why ? why : "invalid key");
        rc = 0;
        goto out;
    }
    if (rc)
        goto out;
    if (++imp->in_group >= imp->group)
        rc = group_commit(imp);
out:
    /* jansson's copy of the PEM: wiped before it is freed. */
    if (pem)
        explicit_bzero((char *)pem, json_string_length(jp));
    json_decref(o);
    return rc;
}

int hd_key_import_finish(struct hd_key_import *imp, struct hd_key_import_stats *stats)
{
    int rc = group_commit(imp);
    if (stats)
        *stats = imp->s;
    return rc;
}

void hd_key_import_free(struct hd_key_import *imp)
{
    if (!imp)
        return;
    if (imp->txn)
        hd_store_abort(imp->txn);
    free(imp);
}

int hd_key_import_buf(struct hd_store *st, const char *buf, size_t len, size_t group,
                      hd_key_import_bad_cb bad, void *user_data,
                      struct hd_key_import_stats *stats)
{
    struct hd_key_import *imp;
    size_t i = 0;
    int rc = hd_key_import_new(st, group, bad, user_data, &imp);

    if (stats)
        memset(stats, 0, sizeof(*stats));
    if (rc)
        return rc;
    while (rc == 0 && i < len) {
        const char *nl = memchr(buf + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - buf) : len;
        rc = hd_key_import_line(imp, buf + i, e - i);
        i = e + 1;
    }
    if (rc == 0)
        rc = hd_key_import_finish(imp, stats);
    else if (stats)
        *stats = imp->s;
    hd_key_import_free(imp);
    return rc;
}
