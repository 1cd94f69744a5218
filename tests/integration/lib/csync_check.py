#!/usr/bin/env python3
"""Checks the requests csync_recv.py logged against an independent computation of FEP-8fcf.

    csync_check.py LOG FOLLOWERS PUBKEY ACTOR URL_TEMPLATE

FOLLOWERS: the actor's current follower ids, one a line. For each request of a followers-only
Create: the Collection-Synchronization header is present exactly when some follower id has the
request's authority (Host), and its digest is the XOR of SHA-256 over those ids (hashlib),
collectionId ACTOR/followers, url the template with the actor. Every request's draft-cavage
signature (draft-cavage, or RFC 9421 rsa-v1_5-sha256) is verified with PUBKEY (RSA), and a
request with the header must list it among the signed headers or components. Other activities carry no header. Prints a summary line; exit 1 on a mismatch.
"""
import base64
import hashlib
import json
import re
import sys
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

log, fol_path, pub_path, actor, url_tpl = sys.argv[1:6]
followers = [l.strip() for l in open(fol_path) if l.strip()]
pub = serialization.load_pem_public_key(open(pub_path, "rb").read())


def digest_for(authority):
    d = bytearray(32)
    n = 0
    for f in followers:
        if urlsplit(f).netloc == authority:
            n += 1
            for i, b in enumerate(hashlib.sha256(f.encode()).digest()):
                d[i] ^= b
    return n, d.hex()


def params(v):
    return dict(re.findall(r'(\w+)="([^"]*)"', v))


bad = []
n_req = n_hdr = n_nohdr = n_9421 = 0
for line in open(log):
    r = json.loads(line)
    h = r["headers"]
    n_req += 1
    parts = []
    if "signature-input" in h:  # RFC 9421
        n_9421 += 1
        label, rest = h["signature-input"].split("=", 1)
        names = re.findall(r'"([^"]+)"', rest[:rest.index(")") + 1])
        for name in names:
            if name == "@method":
                parts.append('"@method": POST')
            elif name == "@target-uri":
                parts.append('"@target-uri": http://%s%s' % (h["host"], r["path"]))
            else:
                parts.append('"%s": %s' % (name, h[name]))
        parts.append('"@signature-params": ' + rest)
        m = re.match(label + r"=:([^:]*):", h["signature"])
        raw = base64.b64decode(m.group(1)) if m else b""
    else:  # draft-cavage
        sig = params(h["signature"])
        names = sig["headers"].split()
        for name in names:
            if name == "(request-target)":
                parts.append("(request-target): post " + r["path"])
            else:
                parts.append("%s: %s" % (name, h[name]))
        raw = base64.b64decode(sig["signature"])
    try:
        pub.verify(raw, "\n".join(parts).encode(), padding.PKCS1v15(), hashes.SHA256())
    except Exception as e:
        bad.append("%s%s: signature does not verify (%s)" % (h["host"], r["path"], e))
    act = json.loads(r["body"])
    addr = act.get("to", []) + act.get("cc", [])
    fonly = (act["type"] == "Create" and actor + "/followers" in addr and
             "https://www.w3.org/ns/activitystreams#Public" not in addr)
    cs = h.get("collection-synchronization")
    n, want = digest_for(h["host"])
    if fonly and n:
        n_hdr += 1
        if cs is None:
            bad.append("%s: no header, %d followers there" % (h["host"], n))
            continue
        p = params(cs)
        if p.get("digest") != want:
            bad.append("%s: digest %s, want %s (%d followers)" % (h["host"], p.get("digest"), want, n))
        if p.get("collectionId") != actor + "/followers":
            bad.append("%s: collectionId %s" % (h["host"], p.get("collectionId")))
        if p.get("url") != url_tpl.replace("{actor}", actor):
            bad.append("%s: url %s" % (h["host"], p.get("url")))
        if "collection-synchronization" not in names:
            bad.append("%s: header not covered by the signature" % h["host"])
    else:
        n_nohdr += 1
        if cs is not None:
            bad.append("%s: unexpected header on %s (%d followers there)" % (h["host"], act["type"], n))
for b in bad:
    print("MISMATCH:", b)
print("requests=%d with_header=%d without=%d rfc9421=%d mismatches=%d"
      % (n_req, n_hdr, n_nohdr, n_9421, len(bad)))
sys.exit(1 if bad else 0)
