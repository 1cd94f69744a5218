# Sourced by herald-bench: fedisim profiles for each MIX, and the host-class rule they use.
#
# Host classes are a function of the host's rank i in popgen's names h<i>.fedi.test (h0 is
# the largest host): with m = i mod 100,
#   dead     i >= 100 and m in 00..09   (00..06 refuse the TLS handshake, 07..09 hang)
#   slow     i >= 10  and m in 10..19   (every answer after 2 s)
#   limited  i >= 10  and m in 20..24   (2 requests/s token bucket, and half of the answers
#                                        429 with Retry-After: 30, as an overloaded host)
#   5xx      i >= 10  and m in 25..26   (500, 502 or 503 to everything)
#   healthy  everything else            (answers 202 after 1..20 ms, lognormal)
# so the ten largest hosts are healthy and, of 20,000 hosts, 1,990 are dead (10%), 1,999 slow,
# 1,000 limited and 400 failing. The glob patterns below encode the same rule: the last two
# digits of the name (h*00.fedi.test ... h*26.fedi.test: a dead pattern needs a digit in front,
# since popgen never writes h00..h09; inih cannot take brackets in section names).

# hb_class_awk: an awk function body, class(i), shared by the post-processing.
hb_class_awk='function hclass(i,   m) { m = i % 100;
    if (i >= 100 && m <= 9) return "dead";
    if (i >= 10 && m >= 10 && m <= 19) return "slow";
    if (i >= 10 && m >= 20 && m <= 24) return "limited";
    if (i >= 10 && m >= 25 && m <= 26) return "5xx";
    return "healthy" }'

# hb_class_jq: the same rule as a jq function on a host name.
hb_class_jq='def hclass: (capture("^h(?<i>[0-9]+)\\.") // {i:"-1"}) | (.i|tonumber) as $i
    | ($i % 100) as $m
    | if $i < 0 then "other"
      elif $i >= 100 and $m <= 9 then "dead"
      elif $i >= 10 and $m >= 10 and $m <= 19 then "slow"
      elif $i >= 10 and $m >= 20 and $m <= 24 then "limited"
      elif $i >= 10 and $m >= 25 and $m <= 26 then "5xx"
      else "healthy" end;'

# hb_profiles MIX FILE: writes fedisim's profile file.
hb_profiles() {
    local mix=$1 f=$2
    {
        echo "; written by herald-bench for MIX=$mix"
        echo "; h2load's baseline host: no verification, no latency (the server's ceiling)"
        echo "[h2load.fedi.test]"
        echo "latency = none"
        echo "verify = no"
        case $mix in
        fast)
            echo "[*]"
            echo "latency = none"
            ;;
        fast9421)
            # Every host accepts only RFC 9421 signatures: Herald's first draft-cavage request
            # per host gets 401 and it switches that host to RFC 9421, which it
            # signs with Ed25519 when the actor has an Ed25519 key.
            echo "[*]"
            echo "latency = none"
            echo "signature = rfc9421"
            ;;
        healthy)
            echo "[*]"
            echo "latency = lognormal 3 20"
            ;;
        hostile)
            local m
            for m in 00 01 02 03 04 05 06; do printf '[h*%s.fedi.test]\ndead = refuse\n' $m; done
            for m in 07 08 09; do printf '[h*%s.fedi.test]\ndead = hang\n' $m; done
            for m in 10 11 12 13 14 15 16 17 18 19; do
                printf '[h*%s.fedi.test]\nlatency = fixed 2000\n' $m
            done
            for m in 20 21 22 23 24; do
                printf '[h*%s.fedi.test]\nlatency = lognormal 3 20\nrate = 2\nburst = 2\n' $m
                printf 'error_429 = 0.5\nretry_after = 30\n'
            done
            for m in 25 26; do
                printf '[h*%s.fedi.test]\nlatency = lognormal 3 20\nerror_500 = 0.4\n' $m
                printf 'error_502 = 0.3\nerror_503 = 0.3\nretry_after = 60\n'
            done
            echo "[*]"
            echo "latency = lognormal 3 20"
            ;;
        *)
            echo "herald-bench: unknown MIX $mix" >&2
            return 1
            ;;
        esac
    } >"$f"
}
