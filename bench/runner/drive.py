#!/usr/bin/env python3
"""herald-bench's long-lived helpers, one process each instead of a fork per sample.

  drive.py sample --fs-port P --out FILE [--interval S]
      fedisim's counters every S seconds (default 0.5) as JSON lines
      {t, requests, accepted, unique_pairs, duplicates, rate_limited, bad_signature,
      connections}, until terminated.

  drive.py post --sock PATH --token-file F --posts FILE --pps X --tick-ms N
                --curve FILE --ingest-out FILE --fs-port P --expect N
                --t0-ms T --time-limit S
      The `platform` scenario's poster: every N ms, the posts due by then (X per second from
      the start, a late tick caught up at the next) POSTed as NDJSON to Herald's
      /v1/activities on the unix socket PATH; appends "start_ms cumulative_deliveries" to
      the curve and each answer to the ingest log. When every post is in, waits until
      fedisim holds N unique pairs, or nothing moved for 10 s, or S seconds passed since
      T (epoch ms). Prints {"deliveries": cumulative} on stdout.

Why not curl, jq, sed and date from bash: on the 2-core benchmark VM those processes (about
60 a second in `platform`) took half a core, beside Herald and fedisim on a machine the
scenario keeps busy; their contention showed as latency.
"""
import argparse
import http.client
import json
import socket
import sys
import time

FS_FIELDS = ("requests", "accepted", "unique_pairs", "duplicates", "rate_limited",
             "bad_signature", "connections")


def now_ms():
    return time.time_ns() // 1000000


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("herald", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class Fedisim:
    """GET /_fedisim/stats on fedisim's control port; one kept-alive connection."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    def stats(self):
        for _ in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                self.conn.request("GET", "/_fedisim/stats", headers={"Host": "ctl.fedi.test"})
                r = self.conn.getresponse()
                body = r.read()
                if r.status != 200:
                    return None
                return json.loads(body)
            except (OSError, http.client.HTTPException, ValueError):
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
        return None


def fs_line(st, t):
    d = {"t": t}
    for k in FS_FIELDS:
        d[k] = st.get(k)
    return json.dumps(d, separators=(",", ":"))


def sum_deliveries(v):
    """The sum of every object's "deliveries" number, at any depth (jq: .. | .deliveries?)."""
    if isinstance(v, dict):
        n = v.get("deliveries")
        s = n if isinstance(n, int) and not isinstance(n, bool) else 0
        return s + sum(sum_deliveries(x) for x in v.values())
    if isinstance(v, list):
        return sum(sum_deliveries(x) for x in v)
    return 0


def cmd_sample(a):
    fs = Fedisim(a.fs_port)
    with open(a.out, "a", buffering=1) as out:
        nxt = time.monotonic()
        while True:
            t = now_ms()
            st = fs.stats()
            if st is not None:
                out.write(fs_line(st, t) + "\n")
            nxt += a.interval
            d = nxt - time.monotonic()
            if d > 0:
                time.sleep(d)
            else:
                nxt = time.monotonic()


def cmd_post(a):
    with open(a.token_file) as f:
        token = f.read().strip()
    with open(a.posts, "rb") as f:
        lines = [ln if ln.endswith(b"\n") else ln + b"\n" for ln in f if ln.strip()]
    npost = len(lines)
    headers = {"Authorization": "Bearer " + token, "Content-Type": "application/x-ndjson"}
    fs = Fedisim(a.fs_port)
    cum = 0
    posted = 0
    tstart = now_ms()
    with open(a.curve, "a", buffering=1) as curve, open(a.ingest_out, "ab") as ing:
        while posted < npost:
            due = min(npost, int(a.pps * (now_ms() - tstart + a.tick_ms) / 1000))
            tick = (now_ms() - tstart) // a.tick_ms + 1
            if due > posted:
                t = now_ms()  # the hand-over: the POST starts (its commit follows within it)
                body = b"".join(lines[posted:due])
                resp = b""
                try:
                    c = UnixHTTPConnection(a.sock, 60)
                    c.request("POST", "/v1/activities", body=body, headers=headers)
                    resp = c.getresponse().read()
                    c.close()
                except (OSError, http.client.HTTPException) as e:
                    sys.stderr.write("drive.py: POST failed: %s\n" % e)
                sent = 0
                try:
                    sent = sum_deliveries(json.loads(resp))
                except ValueError:
                    for ln in resp.splitlines():
                        try:
                            sent += sum_deliveries(json.loads(ln))
                        except ValueError:
                            pass
                cum += sent
                curve.write("%d %d\n" % (t, cum))
                ing.write(resp.rstrip(b"\n") + b"\n")
                posted = due
            dt = (tstart + tick * a.tick_ms - now_ms()) / 1000.0
            if dt > 0:
                time.sleep(dt)
    # Done when the receivers hold every pair, or nothing moved for 10 s, or time is up.
    last, still = -1, 0
    while now_ms() - a.t0_ms < a.time_limit * 1000:
        st = fs.stats()
        u = (st or {}).get("unique_pairs") or 0
        if u >= a.expect:
            break
        if u == last:
            still += 1
        else:
            still, last = 0, u
        if still >= 20:
            break
        time.sleep(0.5)
    print(json.dumps({"deliveries": cum}))
    return 0


def main():
    p = argparse.ArgumentParser(prog="drive.py")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sample")
    s.add_argument("--fs-port", type=int, required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--interval", type=float, default=0.5)
    q = sub.add_parser("post")
    q.add_argument("--sock", required=True)
    q.add_argument("--token-file", required=True)
    q.add_argument("--posts", required=True)
    q.add_argument("--pps", type=float, required=True)
    q.add_argument("--tick-ms", type=int, required=True)
    q.add_argument("--curve", required=True)
    q.add_argument("--ingest-out", required=True)
    q.add_argument("--fs-port", type=int, required=True)
    q.add_argument("--expect", type=int, required=True)
    q.add_argument("--t0-ms", type=int, required=True)
    q.add_argument("--time-limit", type=int, required=True)
    a = p.parse_args()
    if a.cmd == "sample":
        try:
            cmd_sample(a)
        except KeyboardInterrupt:
            pass
        return 0
    if a.pps <= 0 or a.tick_ms <= 0:
        p.error("--pps and --tick-ms must be positive")
    return cmd_post(a)


if __name__ == "__main__":
    sys.exit(main())
