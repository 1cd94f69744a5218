/* `herald activity` (see cli_activity.h). */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "activity.h"
#include "cli_activity.h"
#include "cli_util.h"
#include "clock.h"
#include "err.h"

static const char *usage_text =
    "usage: herald activity cancel ID\n"
    "       herald activity show ID [--json]\n"
    "ID is the activity's id URL or its sequence number.\n";

static void print_status(const struct hd_act_status *s)
{
    char t1[32], t2[32];
    const struct hd_actstat *a = &s->a;

    printf("activity %" PRIu64 "%s%s\n", s->seq,
           (a->flags & HD_ACTSTAT_CANCELLED) ? " (cancelled)" : "",
           !s->recorded || (a->flags & HD_ACTSTAT_MIGRATED)
               ? " (counted since the store was migrated: earlier deliveries not included)"
               : "");
    printf("priority %s", a->priority == HD_PRIO_HIGH  ? "high"
                          : a->priority == HD_PRIO_LOW ? "low"
                                                       : "normal");
    if (a->not_before_ms)
        printf(", not before %s", hd_cli_iso_time(a->not_before_ms, t1, sizeof(t1)));
    printf("\n");
    printf("done %" PRIu64 ", pending %" PRIu64 ", held %" PRIu64 ", retrying %" PRIu64
           ", failed %" PRIu64 ", cancelled %" PRIu64 ", withheld %" PRIu64 ", dropped %" PRIu64
           ", expired %" PRIu64 "\n",
           a->done, s->pending, s->held, a->retrying, a->failed, a->cancelled, a->withheld,
           a->dropped, a->expired);
    if (a->first_ms)
        printf("first delivery %s, last delivery %s\n",
               hd_cli_iso_time(a->first_ms, t1, sizeof(t1)),
               hd_cli_iso_time(a->last_ms, t2, sizeof(t2)));
    for (size_t i = 0; i < s->nfail; i++)
        printf("failing %s: %u %s\n", s->fail[i].host, s->fail[i].status, s->fail[i].error);
}

int hd_cli_activity(const char *db, int argc, char **argv)
{
    struct hd_store *st;
    int rc, json = 0, show;
    const char *name;

    if (hd_cli_help(argc, argv, usage_text))
        return 0;
    if (argc < 2 || (strcmp(argv[1], "cancel") && strcmp(argv[1], "show")))
        return hd_cli_bad_sub("activity", usage_text, argc, argv, "cancel or show");
    show = !strcmp(argv[1], "show");
    if (hd_cli_simple_args(show ? "activity show" : "activity cancel", usage_text, argc - 1,
                           argv + 1, show ? &json : NULL, 1, 1))
        return HD_CLI_USAGE_EXIT;
    name = argv[optind + 1];
    if (show ? hd_cli_open_store_ro(db, &st, "activity show")
             : hd_cli_open_store(db, &st, "activity cancel"))
        return 1;
    if (!strcmp(argv[1], "cancel")) {
        struct hd_cancel_result r;
        rc = hd_activity_cancel(st, name, hd_wall_ms(), &r);
        if (!rc)
            hd_cli_print_json(hd_activity_cancel_json(&r));
    } else {
        struct hd_act_status s;
        rc = hd_activity_status(st, name, hd_wall_ms(), &s);
        if (!rc && json)
            hd_cli_print_json(hd_activity_status_json(&s));
        else if (!rc)
            print_status(&s);
    }
    hd_store_close(st);
    if (rc == HD_ERR_NOT_FOUND) {
        fprintf(stderr, "herald activity %s: no activity %s\n", argv[1], name);
        return 1;
    }
    if (rc) {
        fprintf(stderr, "herald activity %s: %s\n", argv[1], hd_strerror(rc));
        return 1;
    }
    return 0;
}
