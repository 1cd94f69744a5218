/* hd_run's start and stop.
 *
 * Start, when a thread cannot be created: linked with -Wl,--wrap=pthread_create
 * (tests/CMakeLists.txt), so the Nth pthread_create of a run fails. The run must return the
 * error (not hang waiting for a thread that never started, not join a thread that does not
 * exist), and leave the store as it found it: the next run must not believe it follows a
 * crash, and a crash that did happen before stays known.
 *
 * Stop, from another thread (as a signal handler or the operations thread sets it), while
 * the log level and the warning interval change under the loop threads (a reload): built
 * with -fsanitize=thread this shows that those are read atomically. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "loop.h"
#include "runner.h"
#include "store.h"
#include "t.h"

int __real_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg);

static int fail_at; /* 1-based call of the current run that fails; 0: none */
static int calls;

int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg)
{
    if (++calls == fail_at)
        return EAGAIN;
    return __real_pthread_create(t, a, fn, arg);
}

static char dir[] = "/tmp/hd-test-run-XXXXXX";

/* Whether someone holds the run lock: another open file description cannot take it. */
static int run_lock_held(void)
{
    char path[512];
    int fd, held;

    snprintf(path, sizeof(path), "%s/run.lock", dir);
    fd = open(path, O_RDWR | O_CLOEXEC);
    T_OK(fd >= 0);
    held = flock(fd, LOCK_EX | LOCK_NB) != 0;
    close(fd);
    return held;
}

/* Runs until idle on a fresh handle with the Nth thread creation failing; returns hd_run's
 * result. */
static int run_once(int fail, unsigned threads)
{
    struct hd_store *st;
    struct hd_run_opts o;
    struct hd_run_summary sum;
    _Atomic int stop = 0;
    int rc;

    T_EQ_INT(hd_store_open(&st, dir, 64), 0);
    hd_run_opts_default(&o);
    o.threads = threads;
    o.until_idle = 1;
    fail_at = fail;
    calls = 0;
    alarm(60); /* a run that waits for a thread that never started fails the test */
    rc = hd_run(st, &o, &stop, &sum);
    alarm(0);
    fail_at = 0;
    T_OK(!run_lock_held()); /* released by hd_run itself, started or not */
    hd_store_close(st);
    return rc;
}

/* Whether the store says a run is in progress (a crash), read by marking it and unmarking. */
static int marked_running(void)
{
    struct hd_store *st;
    int was = -1;

    T_EQ_INT(hd_store_open(&st, dir, 64), 0);
    T_EQ_INT(hd_store_run_mark(st, 1, &was), 0);
    T_EQ_INT(hd_store_run_mark(st, 0, NULL), 0);
    hd_store_close(st);
    return was;
}

static void set_marked(int running)
{
    struct hd_store *st;

    T_EQ_INT(hd_store_open(&st, dir, 64), 0);
    T_EQ_INT(hd_store_run_mark(st, running, NULL), 0);
    hd_store_close(st);
}

struct stopper {
    _Atomic int *stop;
    int levels;
};

/* What a reload and a signal do while the run goes on. */
static void *stop_later(void *arg)
{
    struct stopper *s = arg;
    struct timespec ts = {0, 20 * 1000000L};

    for (int i = 0; i < 15; i++) {
        hd_log_level = i % 2 ? HD_LOG_WARN : HD_LOG_INFO;
        hd_log_warn_interval_ms = 1000 + (unsigned)i;
        s->levels++;
        nanosleep(&ts, NULL);
    }
    atomic_store_explicit(s->stop, 1, memory_order_relaxed);
    return NULL;
}

/* A run without --until-idle ends only when told to. */
static void run_until_stopped(void)
{
    struct hd_store *st;
    struct hd_run_opts o;
    struct hd_run_summary sum;
    _Atomic int stop = 0;
    struct stopper s = {&stop, 0};
    pthread_t t;

    T_EQ_INT(hd_store_open(&st, dir, 64), 0);
    hd_run_opts_default(&o);
    o.threads = 2;
    T_EQ_INT(pthread_create(&t, NULL, stop_later, &s), 0);
    alarm(60);
    T_EQ_INT(hd_run(st, &o, &stop, &sum), 0);
    alarm(0);
    T_EQ_INT(pthread_join(t, NULL), 0);
    T_EQ_INT(s.levels, 15);
    hd_log_level = HD_LOG_INFO;
    hd_store_close(st);
}

int main(void)
{
    struct hd_loop *probe;
    char cmd[256];

    if (hd_loop_new(&probe, 8) != 0)
        T_SKIP("io_uring not available");
    hd_loop_free(probe);
    T_OK(mkdtemp(dir) != NULL);

    /* a clean run first: the store knows runs */
    T_EQ_INT(run_once(0, 2), 0);
    T_EQ_INT(calls, 3); /* committer and two loop threads */
    T_EQ_INT(marked_running(), 0);

    /* the committer, the first and the last loop thread fail to start */
    for (int n = 1; n <= 3; n++) {
        fprintf(stderr, "pthread_create call %d fails\n", n);
        T_EQ_INT(run_once(n, 2), -EAGAIN);
        T_EQ_INT(marked_running(), 0); /* the next run does not believe it follows a crash */
    }

    /* after a crash (the mark left set), a failed start keeps the crash known */
    set_marked(1);
    T_EQ_INT(run_once(2, 2), -EAGAIN);
    T_EQ_INT(marked_running(), 1);
    set_marked(1);
    T_EQ_INT(run_once(0, 1), 0); /* a run that starts clears it at its clean stop */
    T_EQ_INT(marked_running(), 0);

    run_until_stopped();
    T_EQ_INT(marked_running(), 0);

    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    T_EQ_INT(system(cmd), 0);
    T_DONE();
}
