/* Config: defaults, every section, durations, per-host sections, strict errors with
 * file:line, reload keeping the old config on a bad file. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "err.h"
#include "log.h"
#include "t.h"

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    T_OK(f != NULL);
    fputs(text, f);
    fclose(f);
}

static void expect_error(const char *text, const char *want)
{
    struct hd_config *c = NULL;
    char err[HD_CONFIG_ERR_MAX];
    int rc = hd_config_load_string(text, "t.ini", &c, err, sizeof(err));
    if (rc != HD_ERR_INVALID)
        fprintf(stderr, "for: %s\n", text);
    T_EQ_INT(rc, HD_ERR_INVALID);
    T_OK(c == NULL);
    if (!strstr(err, want))
        T_FAIL("error '%s' does not contain '%s'", err, want);
}

int main(void)
{
    struct hd_config *c;
    struct hd_config def;
    char err[HD_CONFIG_ERR_MAX];
    uint64_t ms;

    hd_config_defaults(&def);
    T_EQ_INT(def.run.max_inflight_host, 64);
    T_EQ_INT(def.run.retry.max_attempts, 16);
    T_EQ_INT(def.drain_timeout_ms, 30000);

    T_EQ_INT(hd_config_parse_duration("250ms", &ms), 0);
    T_EQ_INT(ms, 250);
    T_EQ_INT(hd_config_parse_duration("10s", &ms), 0);
    T_EQ_INT(ms, 10000);
    T_EQ_INT(hd_config_parse_duration("6h", &ms), 0);
    T_EQ_INT(ms, 6 * 3600000ull);
    T_EQ_INT(hd_config_parse_duration("2d", &ms), 0);
    T_EQ_INT(ms, 2 * 86400000ull);
    T_EQ_INT(hd_config_parse_duration("42", &ms), 0);
    T_EQ_INT(ms, 42);
    T_EQ_INT(hd_config_parse_duration("10 s", &ms), HD_ERR_INVALID);
    T_EQ_INT(hd_config_parse_duration("-1s", &ms), HD_ERR_INVALID);
    T_EQ_INT(hd_config_parse_duration("5y", &ms), HD_ERR_INVALID);

    /* empty file: defaults */
    T_EQ_INT(hd_config_load_string("", "empty.ini", &c, err, sizeof(err)), 0);
    T_EQ_INT(c->run.max_inflight_host, 64);
    T_EQ_INT(c->top_hosts, 50);
    hd_config_free(c);

    /* every section */
    T_EQ_INT(hd_config_load_string("; comment\n"
                                   "[run]\n"
                                   "threads = 3\n"
                                   "max_inflight_host = 10\n"
                                   "max_inflight_thread = 999\n"
                                   "connect_timeout = 2s\n"
                                   "tls_timeout = 3000\n"
                                   "response_timeout = 1m\n"
                                   "commit_interval = 10ms\n"
                                   "commit_batch = 100\n"
                                   "commit_gap = 30ms\n"
                                   "retry_base = 30s\n"
                                   "retry_cap = 2h\n"
                                   "max_attempts = 5\n"
                                   "retry_after_cap = 1h\n"
                                   "window_initial = 2\n"
                                   "breaker_threshold = 9\n"
                                   "breaker_probe = 10s\n"
                                   "breaker_probe_max = 10m\n"
                                   "window_decrease_gap = 500ms\n"
                                   "dead_days = 3\n"
                                   "dead_probe_interval = 12h\n"
                                   "day_length = 1h\n"
                                   "max_age = 2d\n"
                                   "drain_timeout = 15s\n"
                                   "allow_private_addresses = true\n"
                                   "ca_file = /etc/ca.pem\n"
                                   "user_agent = Test/1\n"
                                   "resolve = a.test:443:127.0.0.1\n"
                                   "resolve = *:443:127.0.0.2\n"
                                   "progress = no\n"
                                   "[ingest]\n"
                                   "listen = unix:/run/herald.sock\n"
                                   "listen = 127.0.0.1:8080\n"
                                   "token_file = /etc/herald/token\n"
                                   "max_queued = 5000\n"
                                   "retry_after = 7\n"
                                   "max_body = 2M\n"
                                   "[metrics]\n"
                                   "top_hosts = 20\n"
                                   "[log]\n"
                                   "level = debug\n"
                                   "warn_interval = 30s\n"
                                   "[host \"Mastodon.Social\"]\n"
                                   "max_inflight = 200\n"
                                   "rate = 50.5\n"
                                   "[host:slow.example]\n"
                                   "rate = 0.5\n",
                                   "full.ini", &c, err, sizeof(err)),
             0);
    T_EQ_INT(c->run.threads, 3);
    T_EQ_INT(c->run.max_inflight_host, 10);
    T_EQ_INT(c->run.max_inflight_thread, 999);
    T_EQ_INT(c->run.connect_timeout_ms, 2000);
    T_EQ_INT(c->run.tls_timeout_ms, 3000);
    T_EQ_INT(c->run.response_timeout_ms, 60000);
    T_EQ_INT(c->run.commit_interval_ms, 10);
    T_EQ_INT(c->run.commit_batch, 100);
    T_EQ_INT(c->run.commit_gap_ms, 30);
    T_EQ_INT(c->run.retry.base_ms, 30000);
    T_EQ_INT(c->run.retry.cap_ms, 7200000);
    T_EQ_INT(c->run.retry.max_attempts, 5);
    T_EQ_INT(c->run.retry.retry_after_cap_ms, 3600000);
    T_EQ_INT(c->run.hostpol.retry_after_cap_ms, 3600000);
    T_EQ_INT(c->run.hostpol.win_max, 10);
    T_EQ_INT(c->run.hostpol.win_init, 2);
    T_EQ_INT(c->run.hostpol.breaker_threshold, 9);
    T_EQ_INT(c->run.hostpol.probe_base_ms, 10000);
    T_EQ_INT(c->run.hostpol.probe_max_ms, 600000);
    T_EQ_INT(c->run.hostpol.decrease_gap_ms, 500);
    T_EQ_INT(c->run.dead_days, 3);
    T_EQ_INT(c->run.hostpol.dead_probe_ms, 12 * 3600000ull);
    T_EQ_INT(c->run.day_ms, 3600000);
    T_EQ_INT(c->run.max_age_ms, 2 * 86400000ull);
    T_EQ_INT(c->drain_timeout_ms, 15000);
    T_EQ_INT(c->run.allow_private, 1);
    T_EQ_STR(c->run.ca_file, "/etc/ca.pem");
    T_EQ_STR(c->run.user_agent, "Test/1");
    T_EQ_INT(c->run.nresolve, 2);
    T_EQ_STR(c->run.resolve[1], "*:443:127.0.0.2");
    T_EQ_INT(c->run.progress, 0);
    T_EQ_INT(c->nlisten, 2);
    T_EQ_STR(c->listen[0], "unix:/run/herald.sock");
    T_EQ_STR(c->token_file, "/etc/herald/token");
    T_EQ_INT(c->max_queued, 5000);
    T_EQ_INT(c->retry_after_s, 7);
    T_EQ_INT(c->max_body, 2u << 20);
    T_EQ_INT(c->top_hosts, 20);
    T_EQ_INT(c->log_level, HD_LOG_DEBUG);
    T_EQ_INT(c->warn_interval_ms, 30000);
    T_EQ_INT(c->nhosts, 2);
    T_OK(hd_config_host_find(c, "mastodon.social") != NULL);
    T_EQ_INT(hd_config_host_find(c, "mastodon.social")->max_inflight, 200);
    T_OK(hd_config_host_find(c, "mastodon.social")->rate > 50.4);
    T_OK(hd_config_host_find(c, "slow.example")->rate < 0.6);
    T_EQ_INT(hd_config_host_find(c, "slow.example")->max_inflight, 0);
    T_OK(hd_config_host_find(c, "other.example") == NULL);
    hd_config_free(c);

    /* strict errors name file:line */
    expect_error("[run]\nthreads = 2\nthraeds = 3\n", "t.ini:3: unknown key thraeds in [run]");
    expect_error("[run]\nconnect_timeout = 10 s\n", "t.ini:2: bad value for connect_timeout");
    expect_error("\n[run]\nmax_inflight_host = 0\n", "t.ini:3: bad value for max_inflight_host");
    expect_error("[runn]\n", "t.ini:1: unknown section [runn]");
    expect_error("[run]\nthreads=1\n[log]\n[run]\n", "t.ini:4: section [run] appears twice");
    expect_error("[run]\nthreads = 1\nthreads = 2\n", "t.ini:3: threads set twice");
    expect_error("[host \"a.example\"]\nwindow = 3\n", "t.ini:2: unknown key window");
    expect_error("[host \"a.example\"]\nrate = fast\n", "t.ini:2: bad value for rate");
    expect_error("[host a.example]\nrate = 1\n", "t.ini:1: bad host section");
    expect_error("[host:a.example]\nrate=1\n[host \"A.example\"]\nrate=2\n",
                 "t.ini:3: host a.example has two sections");
    expect_error("threads = 1\n", "t.ini:1: key threads outside of any section");
    expect_error("[run]\nthis line has no equals sign\n", "t.ini:2: syntax error");
    expect_error("[run]\nallow_private_addresses = maybe\n", "t.ini:2: bad value");
    expect_error("[log]\nlevel = loud\n", "t.ini:2: bad value for level");
    expect_error("[ingest]\nlisten = somewhere\n", "t.ini:2: listen must be");
    expect_error("[run]\nretry_base = 2h\nretry_cap = 1h\n", "retry_cap is smaller");
    /* the hint after a bad value names what each kind of key takes */
    expect_error("[run]\nidle_timeout = 0\n",
                 "t.ini:2: bad value for idle_timeout: '0' (a duration such as 250ms, 10s, 5m, "
                 "6h, 2d)");
    expect_error("[run]\nprogress = maybe\n",
                 "t.ini:2: bad value for progress: 'maybe' (true or false)");
    expect_error("[log]\nlevel = loud\n",
                 "t.ini:2: bad value for level: 'loud' (error, warn, info or debug)");
    expect_error("[run]\ndead_host_queue = drop\n",
                 "t.ini:2: bad value for dead_host_queue: 'drop' (keep or expire)");
    expect_error("[run]\nthreads = 257\n",
                 "t.ini:2: bad value for threads: '257' (an integer from 0 to 256)");
    expect_error("[run]\nthreads = -1\n", "t.ini:2: bad value for threads: '-1'");
    expect_error("[run]\nthreads = 1x\n", "t.ini:2: bad value for threads");
    expect_error("[ingest]\nmax_body = 1023\n",
                 "t.ini:2: bad value for max_body: '1023' (an integer from 1024 to 1073741824)");
    expect_error("[ingest]\nmax_body = 2T\n", "t.ini:2: bad value for max_body");
    expect_error("[ingest]\nmax_body = 2g\n", "t.ini:2: bad value for max_body");
    expect_error("[ingest]\nmax_body = 1025M\n", "t.ini:2: bad value for max_body");
    expect_error("[ingest]\nmax_body = k\n", "t.ini:2: bad value for max_body");
    expect_error("[ingest]\ntoken_file = \n", "t.ini:2: token_file must not be empty");
    expect_error("[run]\nmax_age = 1y\n", "t.ini:2: bad value for max_age");
    {
        static const struct {
            const char *text;
            size_t max_body;
        } sizes[] = {{"[ingest]\nmax_body = 4096\n", 4096},
                     {"[ingest]\nmax_body = 64k\n", 64 << 10},
                     {"[ingest]\nmax_body = 64K\n", 64 << 10},
                     {"[ingest]\nmax_body = 3M\n", 3 << 20},
                     {"[ingest]\nmax_body = 1G\n", 1u << 30}};
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
            T_EQ_INT(hd_config_load_string(sizes[i].text, "t.ini", &c, err, sizeof(err)), 0);
            T_EQ_INT(c->max_body, sizes[i].max_body);
            hd_config_free(c);
        }
        T_EQ_INT(hd_config_load_string("[run]\ndead_host_queue = expire\nprogress = on\n"
                                       "max_age = 2d\n[log]\nlevel = warn\n",
                                       "t.ini", &c, err, sizeof(err)),
                 0);
        T_EQ_INT(c->run.dead_queue_expire, 1);
        T_EQ_INT(c->run.progress, 1);
        T_EQ_INT(c->run.max_age_ms, 2ull * 86400000);
        T_EQ_INT(c->log_level, HD_LOG_WARN);
        T_EQ_INT(c->log_level_set, 1);
        hd_config_free(c);
    }

    /* reload: a bad file keeps the old settings */
    {
        char path[] = "/tmp/hd_test_config_XXXXXX";
        int fd = mkstemp(path);
        struct hd_config_holder *h;
        char msg[HD_CONFIG_ERR_MAX];
        const struct hd_config *cur;
        T_OK(fd >= 0);
        close(fd);
        write_file(path, "[run]\nthreads = 2\n[metrics]\ntop_hosts = 5\n");
        T_EQ_INT(hd_config_load(path, &c, err, sizeof(err)), 0);
        T_EQ_INT(hd_config_holder_new(&h, c), 0);
        cur = hd_config_current(h);
        T_EQ_INT(cur->top_hosts, 5);

        write_file(path, "[run]\nthreads = 2\n[metrics]\ntop_hosts = many\n");
        T_EQ_INT(hd_config_reload(h, msg, sizeof(msg)), HD_ERR_INVALID);
        T_OK(strstr(msg, ":4: bad value for top_hosts") != NULL);
        T_OK(hd_config_current(h) == cur);
        T_EQ_INT(hd_config_current(h)->top_hosts, 5);
        T_EQ_INT(hd_config_generation(h), 0);

        write_file(path, "[run]\nthreads = 4\n[metrics]\ntop_hosts = 7\n");
        T_EQ_INT(hd_config_reload(h, msg, sizeof(msg)), 0);
        T_OK(strstr(msg, "threads") != NULL); /* needs a restart */
        T_EQ_INT(hd_config_current(h)->top_hosts, 7);
        T_EQ_INT(cur->top_hosts, 5); /* the old snapshot is still readable */
        T_EQ_INT(hd_config_generation(h), 1);

        unlink(path);
        T_OK(hd_config_reload(h, msg, sizeof(msg)) < 0);
        T_EQ_INT(hd_config_current(h)->top_hosts, 7);
        hd_config_holder_free(h);
    }

    /* garbage never crashes and never passes silently: random lines drawn from fragments of
     * valid and invalid syntax (run under ASan in tools/test.sh) */
    {
        static const char *const frag[] = {
            "[run]", "[ingest]", "[host \"a.example\"]", "[host:b.example]", "[log]", "[",
            "]", "threads = 3", "threads = -1", "rate = 1e400", "rate = 2.5", "max_inflight = 0",
            "listen = unix:/x", "listen = ", "resolve = a:1:b", "level = debug", "=", " = x",
            "key", "; c", "# c", "drain_timeout = 99999999999999999999d", "max_body = 3G",
            "\xff\xfe", "  indented = 1", "[metrics]", "top_hosts = 10001", "[host \"\"]"};
        unsigned seed = 12345;
        for (int round = 0; round < 2000; round++) {
            char text[1024];
            size_t n = 0;
            int lines = 1 + (int)((seed >> 16) % 8);
            for (int l = 0; l < lines; l++) {
                const char *f;
                seed = seed * 1103515245u + 12345u;
                f = frag[(seed >> 16) % (sizeof(frag) / sizeof(frag[0]))];
                if (n + strlen(f) + 2 >= sizeof(text))
                    break;
                memcpy(text + n, f, strlen(f));
                n += strlen(f);
                text[n++] = '\n';
            }
            text[n] = 0;
            c = NULL;
            if (hd_config_load_string(text, "r.ini", &c, err, sizeof(err)) == 0)
                hd_config_free(c);
            else
                T_OK(strncmp(err, "r.ini:", 6) == 0); /* every error says where */
        }
    }

    /* the shipped example parses */
    {
        const char *src = getenv("HD_TEST_DATA");
        char path[1024];
        if (src) {
            snprintf(path, sizeof(path), "%s/../../tools/herald.ini.example", src);
            if (access(path, R_OK) == 0) {
                int rc = hd_config_load(path, &c, err, sizeof(err));
                if (rc)
                    T_FAIL("example: %s", err);
                hd_config_free(c);
            }
        }
    }
    T_DONE();
}
