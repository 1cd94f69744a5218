/* example_api: how a platform links Herald directly (include/herald/herald.h).
 *
 *   example_api DB_DIR KEY.pem [admin]
 *
 * Opens (creating) the store, stores the actor's signing key, records a follower, enqueues
 * one Create to an explicit inbox and prints the result and the store's counts. A running
 * `herald --db DB_DIR run` delivers what was enqueued. With "admin" it then uses the
 * operator's controls: host controls, a suspend (the queued delivery becomes a dead letter),
 * its removal and a dead-letter retry (the delivery is queued again), and the actor's
 * federation choice.
 *
 * Build against an installed Herald:
 *   cc example_api.c $(pkg-config --cflags --libs herald) -o example_api */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <herald/herald.h>

#define ACTOR "https://social.example/users/alice"

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || n > (1 << 20) ||
        fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf)
        *len = (size_t)n;
    return buf;
}

/* The operator's controls (group "admin" of herald.h). Returns 0 or 1. */
static int admin(herald_store *h)
{
    const struct herald_host_controls set = {0, 8, 2.5};
    const struct herald_block block = {"mastodon.example", HERALD_SEV_SUSPEND, "example", 0, 0, 0};
    struct herald_host_controls got;
    uint64_t n = 0, kept = 0;
    int rc, replaced = 0;

    rc = herald_host_set(h, "mastodon.example", &set);
    if (!rc)
        rc = herald_host_get(h, "mastodon.example", &got);
    if (rc)
        goto fail;
    printf("host mastodon.example: paused=%d max_inflight=%u rate=%g\n", got.paused,
           got.max_inflight, got.rate);
    rc = herald_block_add(h, &block, &n, &replaced);
    if (rc)
        goto fail;
    printf("suspended mastodon.example: %" PRIu64 " queued deliveries became dead letters\n", n);
    rc = herald_dead_count(h, "mastodon.example", &n);
    if (!rc)
        printf("dead letters: %" PRIu64 "\n", n);
    if (!rc)
        rc = herald_block_remove(h, "mastodon.example");
    if (!rc)
        rc = herald_dead_retry(h, NULL, &n, &kept);
    if (rc)
        goto fail;
    printf("unblocked; requeued %" PRIu64 " (kept %" PRIu64 ")\n", n, kept);
    rc = herald_actor_set_federation(h, ACTOR, HERALD_FED_PUBLIC, &n);
    if (!rc)
        rc = herald_host_set(h, "mastodon.example", &(struct herald_host_controls){0, 0, 0});
    if (rc)
        goto fail;
    printf("actor federation public; host controls cleared\n");
    return 0;
fail:
    fprintf(stderr, "admin: %s\n", herald_strerror(rc));
    return 1;
}

int main(int argc, char **argv)
{
    static const char envelope[] =
        "{\"activity\":{\"@context\":\"https://www.w3.org/ns/activitystreams\","
        "\"id\":\"https://social.example/activities/1\",\"type\":\"Create\","
        "\"actor\":\"" ACTOR "\",\"object\":{\"id\":\"https://social.example/notes/1\","
        "\"type\":\"Note\",\"content\":\"Hello from the C API\"}},"
        "\"inboxes\":[\"https://mastodon.example/inbox\"]}";
    const struct herald_follow follow = {ACTOR, "https://mastodon.example/users/bob",
                                         "https://mastodon.example/users/bob/inbox",
                                         "https://mastodon.example/inbox"};
    herald_store *h;
    struct herald_result res;
    struct herald_stats st;
    const char *why = NULL;
    char *pem;
    size_t pem_len;
    int rc;

    if (argc != 3 && !(argc == 4 && strcmp(argv[3], "admin") == 0)) {
        fprintf(stderr, "usage: example_api DB_DIR KEY.pem [admin]\n");
        return 2;
    }
    rc = herald_open(argv[1], &h);
    if (rc) {
        fprintf(stderr, "open %s: %s\n", argv[1], herald_strerror(rc));
        return 1;
    }
    pem = read_all(argv[2], &pem_len);
    if (!pem) {
        fprintf(stderr, "cannot read %s\n", argv[2]);
        herald_close(h);
        return 1;
    }
    rc = herald_key_add(h, ACTOR "#main-key", ACTOR, pem, pem_len, &why);
    memset(pem, 0, pem_len); /* our copy of the key is no longer needed */
    free(pem);
    if (rc) {
        fprintf(stderr, "key: %s\n", why ? why : herald_strerror(rc));
        herald_close(h);
        return 1;
    }
    rc = herald_follow_add(h, &follow, &why);
    if (rc)
        fprintf(stderr, "follow: %s\n", rc == HERALD_ERR_INVALID && why ? why : herald_strerror(rc));

    rc = herald_enqueue(h, envelope, sizeof(envelope) - 1, &res);
    if (rc == 0)
        printf("enqueued seq=%" PRIu64 " deliveries=%zu\n", res.seq, res.deliveries);
    else if (rc == HERALD_ERR_DUPLICATE)
        printf("already enqueued as seq=%" PRIu64 "\n", res.seq);
    else
        fprintf(stderr, "enqueue: %s (%s)\n", herald_strerror(rc), res.why);

    if (herald_stats(h, &st) == 0)
        printf("activities=%" PRIu64 " pending=%" PRIu64 " retrying=%" PRIu64 " done=%" PRIu64
               " failed=%" PRIu64 " hosts=%" PRIu64 "\n",
               st.activities, st.pending, st.retrying, st.done, st.failed, st.hosts);
    if ((rc == 0 || rc == HERALD_ERR_DUPLICATE) && argc == 4)
        rc = admin(h);
    herald_close(h);
    return rc == 0 || rc == HERALD_ERR_DUPLICATE ? 0 : 1;
}
