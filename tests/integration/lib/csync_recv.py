#!/usr/bin/env python3
"""A plain-HTTP inbox for the Collection-Synchronization test: answers 202 to every POST and
appends one JSON line per request (host, path, lower-cased headers) to LOG; host rfc.test
accepts RFC 9421 signatures only (401 with Accept-Signature to the others, not logged). Listens on
127.0.0.1, on a free port it writes to PORTFILE; exits after MAX_SECONDS.

    csync_recv.py LOG PORTFILE MAX_SECONDS
"""
import http.server
import json
import sys
import threading

log_path, port_file, max_s = sys.argv[1], sys.argv[2], float(sys.argv[3])
lock = threading.Lock()


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        # rfc.test verifies RFC 9421 only: a draft-cavage request gets 401 with
        # Accept-Signature (not logged), and the sender switches that host to RFC 9421.
        if self.headers.get("Host", "").startswith("rfc.test") and \
                "Signature-Input" not in self.headers:
            self.send_response(401)
            self.send_header("Accept-Signature",
                             'sig1=("@method" "@target-uri" "content-digest");alg="rsa-v1_5-sha256"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        rec = {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
               "body": body.decode("utf-8", "replace")}
        with lock, open(log_path, "a") as f:
            f.write(json.dumps(rec) + "\n")
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(port_file + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os
os.rename(port_file + ".tmp", port_file)
threading.Timer(max_s, srv.shutdown).start()
srv.serve_forever()
