/* example_api: how a platform links Herald directly (include/herald/herald.h).
 *
 *   example_api DB_DIR KEY.pem
 *
 * Opens (creating) the store, stores the actor's signing key, records a follower, enqueues
 * one Create to an explicit inbox and prints the result and the store's counts. A running
 * `herald --db DB_DIR run` delivers what was enqueued. */
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

    if (argc != 3) {
        fprintf(stderr, "usage: example_api DB_DIR KEY.pem\n");
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
    herald_close(h);
    return rc == 0 || rc == HERALD_ERR_DUPLICATE ? 0 : 1;
}
