#!/usr/bin/env bash
# A post to 5,000 followers over 300 hosts (popgen's Fediverse-like skew: a third on one host,
# a tail of single-follower hosts, 95% with a shared inbox) delivered over TLS/h2 to fedisim:
# exactly one request per distinct delivery inbox, each verified and checked against the
# expected list. The same script runs the 1,000,000-follower bench (bench/popgen/).
exec bash "$(dirname "$0")/../../bench/popgen/audience_e2e.sh" 5000 300
