/* The address guard.
 *
 * Design choices (why):
 * - The guard runs on the address actually dialled, never on a host name, so a name whose
 *   answer changes between lookups (DNS rebinding) is judged on what we really connect to.
 * - IPv4 is a deny-list of the IANA special-purpose ranges: everything else in IPv4 is
 *   allocated unicast space.
 * - IPv6 is an allow-list: only 2000::/3 is allocated as global unicast, so everything
 *   outside it (::, ::1, ::/96, 100::/64, fe80::/10, fec0::/10, fc00::/7, ff00::/8 and
 *   the unallocated rest) is refused, and inside it we deny Teredo, ORCHID, documentation
 *   and 6to4 with a non-public embedded IPv4. An allow-list cannot be bypassed by a range
 *   we forgot to list. The named ranges are still classified individually so logs (and
 *   tests) can say why an address was refused.
 * - IPv6 forms that carry an IPv4 address the kernel or a NAT64 gateway will actually reach
 *   (mapped ::ffff:0:0/96, NAT64 64:ff9b::/96 and 64:ff9b:1::/48, 6to4 2002::/16) are judged
 *   by the IPv4 rules on the embedded address: 6to4 relays and NAT64 gateways forward to it,
 *   so ::ffff:127.0.0.1 or 64:ff9b::10.0.0.1 is as dangerous as the IPv4 address itself.
 * - IPv4-compatible ::/96 is deprecated (RFC 4291) and not routable; it is refused outright
 *   (it lies outside 2000::/3), which is stricter than applying the IPv4 rules.
 * - Teredo (2001::/32) is refused whole: its embedded server and client addresses are
 *   obfuscated and chosen by whoever controls the name, so they cannot be trusted.
 * - All tables are const; there is no state, so the guard is safe from any thread.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "addr.h"
#include "err.h"

struct v4_range {
    uint32_t net;  /* host byte order */
    unsigned bits;
    const char *name;
};

/* IANA IPv4 special-purpose registry (RFC 6890 and successors), plus multicast/reserved. */
static const struct v4_range v4_denied[] = {
    {0x00000000u, 8, "this-network"},     /* 0.0.0.0/8 */
    {0x0a000000u, 8, "private"},          /* 10.0.0.0/8 */
    {0x64400000u, 10, "cgnat"},           /* 100.64.0.0/10 */
    {0x7f000000u, 8, "loopback"},         /* 127.0.0.0/8 */
    {0xa9fe0000u, 16, "link-local"},      /* 169.254.0.0/16 */
    {0xac100000u, 12, "private"},         /* 172.16.0.0/12 */
    {0xc0000000u, 24, "ietf-protocol"},   /* 192.0.0.0/24 */
    {0xc0000200u, 24, "documentation"},   /* 192.0.2.0/24 TEST-NET-1 */
    {0xc0586300u, 24, "6to4-relay"},      /* 192.88.99.0/24 */
    {0xc0a80000u, 16, "private"},         /* 192.168.0.0/16 */
    {0xc6120000u, 15, "benchmark"},       /* 198.18.0.0/15 */
    {0xc6336400u, 24, "documentation"},   /* 198.51.100.0/24 TEST-NET-2 */
    {0xcb007100u, 24, "documentation"},   /* 203.0.113.0/24 TEST-NET-3 */
    {0xe0000000u, 4, "multicast"},        /* 224.0.0.0/4 */
    {0xffffffffu, 32, "broadcast"},       /* 255.255.255.255 (before 240/4 for its name) */
    {0xf0000000u, 4, "reserved"},         /* 240.0.0.0/4 */
};

static const char *classify_v4(uint32_t a)
{
    size_t i;

    for (i = 0; i < sizeof(v4_denied) / sizeof(v4_denied[0]); i++) {
        uint32_t mask = v4_denied[i].bits ? 0xffffffffu << (32 - v4_denied[i].bits) : 0;
        if ((a & mask) == v4_denied[i].net)
            return v4_denied[i].name;
    }
    return NULL;
}

static uint32_t be32_at(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Does the first `bits` bits of a match prefix p? */
static int v6_in(const uint8_t *a, const uint8_t *p, unsigned bits)
{
    unsigned full = bits / 8, rest = bits % 8;

    if (memcmp(a, p, full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    return ((a[full] ^ p[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

struct v6_range {
    uint8_t net[16];
    unsigned bits;
    const char *name;
};

/* Named ranges outside 2000::/3 are listed only to name them; the allow-list refuses them
 * anyway. Order matters: the most specific first. */
static const struct v6_range v6_denied[] = {
    {{0}, 128, "unspecified"},                                               /* :: */
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128, "loopback"},     /* ::1 */
    {{0}, 96, "ipv4-compatible"},                                            /* ::/96 */
    {{0x01, 0x00}, 64, "discard"},                                           /* 100::/64 */
    {{0xfe, 0x80}, 10, "link-local"},                                        /* fe80::/10 */
    {{0xfe, 0xc0}, 10, "site-local"},                                        /* fec0::/10 */
    {{0xfc, 0x00}, 7, "unique-local"},                                       /* fc00::/7 */
    {{0xff, 0x00}, 8, "multicast"},                                          /* ff00::/8 */
    {{0x20, 0x01, 0x00, 0x00}, 32, "teredo"},                                /* 2001::/32 */
    {{0x20, 0x01, 0x00, 0x10}, 28, "orchid"},                                /* 2001:10::/28 */
    {{0x20, 0x01, 0x00, 0x20}, 28, "orchid-v2"},                             /* 2001:20::/28 */
    {{0x20, 0x01, 0x0d, 0xb8}, 32, "documentation"},                         /* 2001:db8::/32 */
};

static const uint8_t v6_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
static const uint8_t v6_nat64[12] = {0x00, 0x64, 0xff, 0x9b};
static const uint8_t v6_nat64_local[6] = {0x00, 0x64, 0xff, 0x9b, 0x00, 0x01};
static const uint8_t v6_6to4[2] = {0x20, 0x02};
static const uint8_t v6_global[1] = {0x20};

static const char *classify_v6(const uint8_t *a)
{
    const char *c;
    size_t i;

    /* Forms that reach an IPv4 destination: judge the destination. */
    if (memcmp(a, v6_mapped, 12) == 0) {
        c = classify_v4(be32_at(a + 12));
        return c ? "ipv4-mapped-nonpublic" : NULL;
    }
    if (v6_in(a, v6_nat64, 96)) {
        c = classify_v4(be32_at(a + 12));
        return c ? "nat64-nonpublic" : NULL;
    }
    if (v6_in(a, v6_nat64_local, 48)) {
        /* RFC 6052 /48 layout: IPv4 bits in octets 6-7 and 9-10; octet 8 ("u") must be 0. */
        uint8_t v4[4] = {a[6], a[7], a[9], a[10]};
        if (a[8] != 0)
            return "nat64-malformed";
        c = classify_v4(be32_at(v4));
        return c ? "nat64-local-nonpublic" : NULL;
    }
    for (i = 0; i < sizeof(v6_denied) / sizeof(v6_denied[0]); i++) {
        if (v6_in(a, v6_denied[i].net, v6_denied[i].bits))
            return v6_denied[i].name;
    }
    if (v6_in(a, v6_6to4, 16)) {
        c = classify_v4(be32_at(a + 2));
        return c ? "6to4-nonpublic" : NULL;
    }
    if (!v6_in(a, v6_global, 3))
        return "ipv6-not-global-unicast";
    return NULL;
}

const char *hd_addr_class(const struct sockaddr *sa)
{
    if (!sa)
        return "invalid";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return classify_v4(ntohl(in->sin_addr.s_addr));
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        return classify_v6(in6->sin6_addr.s6_addr);
    }
    return "invalid";
}

int hd_addr_check(const struct sockaddr *sa, int allow_private)
{
    if (!sa || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
        return HD_ERR_INVALID;
    if (allow_private)
        return 0;
    return hd_addr_class(sa) ? HD_ERR_PRIVATE_ADDR : 0;
}

char *hd_addr_format(const struct sockaddr *sa, char *buf, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];

    if (!buf || cap == 0)
        return buf;
    if (sa && sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        snprintf(buf, cap, "%s:%u", ip, (unsigned)ntohs(in->sin_port));
    } else if (sa && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        snprintf(buf, cap, "[%s]:%u", ip, (unsigned)ntohs(in6->sin6_port));
    } else {
        snprintf(buf, cap, "?");
    }
    return buf;
}
