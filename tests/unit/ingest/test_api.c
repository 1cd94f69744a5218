/* Public C API: open, key, enqueue (one, batch, duplicate, refusals), follows, stats,
 * error mapping. Uses only include/herald/herald.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "herald/herald.h"
#include "t.h"

#define ACTOR "https://a.example/users/al"

int main(void)
{
    char dir[] = "/tmp/hd-test-api-XXXXXX", path[512], *pem;
    const char *data = getenv("HD_TEST_DATA"), *why = NULL;
    herald_store *h = NULL;
    struct herald_result r, rs[4];
    struct herald_stats s;
    size_t len;

    T_OK(data != NULL);
    T_OK(mkdtemp(dir) != NULL);

    /* errors and strings */
    T_EQ_INT(herald_open(NULL, &h), HERALD_ERR_INVALID);
    T_OK(h == NULL);
    T_OK(strlen(herald_strerror(HERALD_ERR_DUPLICATE)) > 0);
    T_EQ_STR(herald_strerror(HERALD_ERR_INTERNAL), "internal error");
    T_EQ_STR(herald_strerror(-ENOMEM), strerror(ENOMEM));
    T_OK(herald_version()[0] != 0);

    /* a store directory others can write is refused */
    snprintf(path, sizeof(path), "%s/open", dir);
    T_EQ_INT(mkdir(path, 0777), 0);
    T_EQ_INT(chmod(path, 0777), 0);
    T_EQ_INT(herald_open(path, &h), -EPERM);
    T_OK(h == NULL);

    snprintf(path, sizeof(path), "%s/db", dir);
    T_EQ_INT(herald_open(path, &h), 0);
    T_OK(h != NULL);

    /* keys */
    T_EQ_INT(herald_key_add(h, "k", ACTOR, "garbage", 7, &why), HERALD_ERR_INVALID);
    T_OK(why != NULL);
    snprintf(path, sizeof(path), "%s/keys/test-only-rsa2048.pem", data);
    pem = t_slurp(path, &len);
    T_OK(pem != NULL);
    T_EQ_INT(herald_key_add(h, ACTOR "#main-key", ACTOR, pem, len, &why), 0);
    free(pem);

    /* one envelope */
    {
        const char *env = "{\"activity\":{\"id\":\"https://a.example/a/1\",\"type\":\"Create\","
                          "\"actor\":\"" ACTOR "\"},\"inboxes\":[\"https://b.example/inbox\","
                          "\"https://c.example/u/1/inbox\",\"https://B.example/inbox\"]}";
        T_EQ_INT(herald_enqueue(h, env, strlen(env), &r), 0);
        T_EQ_INT(r.rc, 0);
        T_OK(r.seq > 0);
        T_EQ_INT(r.deliveries, 2);
        /* the same id again: duplicate with the original seq */
        {
            uint64_t seq = r.seq;
            T_EQ_INT(herald_enqueue(h, env, strlen(env), &r), HERALD_ERR_DUPLICATE);
            T_EQ_INT(r.seq, seq);
        }
    }
    /* refusals */
    T_EQ_INT(herald_enqueue(h, "{oops", 5, &r), HERALD_ERR_INVALID);
    T_OK(r.why[0] != 0);
    {
        const char *nokey = "{\"activity\":{\"id\":\"https://x.example/a/1\",\"type\":\"Create\","
                            "\"actor\":\"https://x.example/u\"},\"inboxes\":[\"https://b.example/i\"]}";
        T_EQ_INT(herald_enqueue(h, nokey, strlen(nokey), &r), HERALD_ERR_NO_KEY);
    }
    T_EQ_INT(herald_enqueue(h, NULL, 0, &r), HERALD_ERR_INVALID);

    /* batch: accepted, refused and duplicate side by side; one commit */
    {
        const char *e[4] = {
            "{\"activity\":{\"id\":\"https://a.example/a/2\",\"type\":\"Create\",\"actor\":\"" ACTOR
            "\"},\"inboxes\":[\"https://b.example/inbox\"]}",
            "{\"activity\":{\"id\":\"https://a.example/a/3\",\"type\":\"Create\",\"actor\":\"" ACTOR
            "\"},\"inboxs\":[\"https://b.example/inbox\"]}",
            "{\"activity\":{\"id\":\"https://a.example/a/1\",\"type\":\"Create\",\"actor\":\"" ACTOR
            "\"},\"inboxes\":[\"https://b.example/inbox\"]}",
            "{\"activity\":{\"id\":\"https://a.example/a/4\",\"type\":\"Create\",\"actor\":\"" ACTOR
            "\"},\"inboxes\":[\"https://d.example/inbox\"]}",
        };
        size_t l[4];
        for (int i = 0; i < 4; i++)
            l[i] = strlen(e[i]);
        T_EQ_INT(herald_enqueue_batch(h, e, l, 4, rs), 0);
        T_EQ_INT(rs[0].rc, 0);
        T_EQ_INT(rs[1].rc, HERALD_ERR_INVALID);
        T_OK(strstr(rs[1].why, "inboxs") != NULL || strstr(rs[1].why, "unknown") != NULL);
        T_EQ_INT(rs[2].rc, HERALD_ERR_DUPLICATE);
        T_EQ_INT(rs[3].rc, 0);
        T_OK(rs[3].seq > rs[0].seq);
        T_EQ_INT(herald_enqueue_batch(h, e, l, HERALD_BATCH_MAX + 1, rs), HERALD_ERR_FULL);
    }

    /* follows */
    {
        struct herald_follow f = {ACTOR, "https://e.example/users/bo", "https://e.example/users/bo/inbox",
                                  "https://e.example/inbox"};
        T_EQ_INT(herald_follow_add(h, &f, &why), 0);
        T_EQ_INT(herald_follow_add(h, &f, &why), 0); /* again: not an error */
        f.inbox = "not a url";
        T_EQ_INT(herald_follow_add(h, &f, &why), HERALD_ERR_INVALID);
        T_OK(why != NULL);
        T_EQ_INT(herald_follow_remove(h, ACTOR, "https://e.example/users/bo", &why), 0);
        T_EQ_INT(herald_follow_remove(h, ACTOR, "https://e.example/users/bo", &why),
                 HERALD_ERR_NOT_FOUND);
    }

    /* stats */
    T_EQ_INT(herald_stats(h, &s), 0);
    T_EQ_INT(s.activities, 3);
    T_EQ_INT(s.pending, 4);
    T_EQ_INT(s.retrying, 0);
    T_EQ_INT(s.hosts, 3);
    T_EQ_INT(herald_stats(h, NULL), HERALD_ERR_INVALID);

    /* one activity: a held, high one; its status, its takedown, the id enqueued again */
    {
        const char *env = "{\"activity\":{\"id\":\"https://a.example/a/held\",\"type\":"
                          "\"Create\",\"actor\":\"" ACTOR "\"},\"inboxes\":["
                          "\"https://b.example/inbox\"],\"not_before\":\"2999-01-01T00:00:00Z\","
                          "\"priority\":\"high\"}";
        const char *bad = "{\"activity\":{\"id\":\"https://a.example/a/bad\",\"type\":"
                          "\"Create\",\"actor\":\"" ACTOR "\"},\"priority\":\"urgent\"}";
        const char *bad2 = "{\"activity\":{\"id\":\"https://a.example/a/bad\",\"type\":"
                           "\"Create\",\"actor\":\"" ACTOR "\"},\"not_before\":\"tomorrow\"}";
        struct herald_activity_status as;
        struct herald_cancel_result cr;
        char num[32];
        T_EQ_INT(herald_enqueue(h, bad, strlen(bad), &r), HERALD_ERR_INVALID);
        T_EQ_INT(herald_enqueue(h, bad2, strlen(bad2), &r), HERALD_ERR_INVALID);
        T_OK(strstr(r.why, "RFC 3339") != NULL);
        T_EQ_INT(herald_enqueue(h, env, strlen(env), &r), 0);
        T_EQ_INT(herald_stats(h, &s), 0);
        T_EQ_INT(s.held, 1);
        T_EQ_INT(s.pending, 4);
        T_EQ_INT(herald_activity_status(h, "https://a.example/a/held", &as), 0);
        T_EQ_INT(as.seq, r.seq);
        T_EQ_INT(as.held, 1);
        T_EQ_INT(as.priority, 1);
        T_EQ_INT(as.not_before_ms, 32472144000000ull);
        snprintf(num, sizeof(num), "%llu", (unsigned long long)r.seq);
        T_EQ_INT(herald_activity_cancel(h, num, &cr), 0);
        T_EQ_INT(cr.cancelled, 1);
        T_EQ_INT(cr.delivered, 0);
        T_EQ_INT(herald_activity_status(h, num, &as), 0);
        T_EQ_INT(as.cancelled, 1);
        T_EQ_INT(as.is_cancelled, 1);
        T_EQ_INT(herald_activity_status(h, "https://a.example/none", &as), HERALD_ERR_NOT_FOUND);
        T_EQ_INT(herald_activity_cancel(h, NULL, &cr), HERALD_ERR_INVALID);
        T_EQ_INT(herald_enqueue(h, env, strlen(env), &r), 0); /* nothing was sent: again */
        T_OK(r.seq != as.seq);
    }

    herald_close(h);
    herald_close(NULL);
    snprintf(path, sizeof(path), "rm -rf %s", dir);
    T_EQ_INT(system(path), 0);
    T_DONE();
}
