/* `herald top`: a live terminal view of hosts for operators (plain ANSI, works over SSH).
 *
 * Where the data comes from: a running `herald run` serves GET /v1/hosts on its ingest
 * endpoint (ingestsrv.h), a JSON view built by the metrics module from the store
 * (backlog, retrying, done, failed, last error) and the engine's live per-host cells (in
 * flight, window, latency histogram, breaker, dead). `top` polls it every interval and
 * computes each host's rate from the change in its delivered count between two polls. No
 * token is needed (the view is read-only, like /metrics).
 *
 * Without an endpoint (no --listen, no [ingest] listen in --config), top reads the store
 * (--db) instead: backlog, retrying, done, failed and last error from the host records, and
 * in flight, window, rate, p50/p99, breaker and dead from the live records a running engine
 * publishes there once a second (hostctl.h; older than 5 s shows as idle).
 *
 *   herald [--db DIR] top [--listen unix:PATH|ADDR:PORT | --config FILE] [--interval SEC] [--limit N]
 *              [--sort backlog|rate|p99|failed|inflight|host] [--once]
 *
 * p50/p99 are over the answers of the last interval (since the engine started when the
 * interval had none), from the per-host latency buckets in the view.
 * Keys: b backlog, r rate, l p99 latency, f failed, i in flight, h host name; q quits.
 * --once prints one plain frame (no ANSI) and exits, for scripts. */
#ifndef HD_CLI_TOP_H
#define HD_CLI_TOP_H

/* Runs the subcommand (argv[0] is "top"). Returns the process exit status. */
int hd_cli_top(const char *db, int argc, char **argv);

#endif
