/* Address guard: every refused range with addresses at its edges and just outside them. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "addr.h"
#include "err.h"
#include "t.h"

/* expect: the class hd_addr_class must return (NULL: public). "just outside" rows name the
 * class of the neighbouring range, or NULL when the neighbour is public. */
struct row {
    const char *ip;
    const char *expect;
};

static const struct row rows[] = {
    /* 0.0.0.0/8 */
    {"0.0.0.0", "this-network"}, {"0.255.255.255", "this-network"}, {"1.0.0.0", NULL},
    /* 10/8 */
    {"9.255.255.255", NULL}, {"10.0.0.0", "private"}, {"10.255.255.255", "private"},
    {"11.0.0.0", NULL},
    /* 100.64/10 */
    {"100.63.255.255", NULL}, {"100.64.0.0", "cgnat"}, {"100.127.255.255", "cgnat"},
    {"100.128.0.0", NULL},
    /* 127/8 */
    {"126.255.255.255", NULL}, {"127.0.0.1", "loopback"}, {"127.255.255.255", "loopback"},
    {"128.0.0.0", NULL},
    /* 169.254/16 */
    {"169.253.255.255", NULL}, {"169.254.0.0", "link-local"}, {"169.254.169.254", "link-local"},
    {"169.254.255.255", "link-local"}, {"169.255.0.0", NULL},
    /* 172.16/12 */
    {"172.15.255.255", NULL}, {"172.16.0.0", "private"}, {"172.31.255.255", "private"},
    {"172.32.0.0", NULL},
    /* 192.0.0/24 */
    {"191.255.255.255", NULL}, {"192.0.0.0", "ietf-protocol"}, {"192.0.0.255", "ietf-protocol"},
    {"192.0.1.0", NULL},
    /* 192.0.2/24 */
    {"192.0.1.255", NULL}, {"192.0.2.0", "documentation"}, {"192.0.2.255", "documentation"},
    {"192.0.3.0", NULL},
    /* 192.88.99/24 */
    {"192.88.98.255", NULL}, {"192.88.99.0", "6to4-relay"}, {"192.88.99.255", "6to4-relay"},
    {"192.88.100.0", NULL},
    /* 192.168/16 */
    {"192.167.255.255", NULL}, {"192.168.0.0", "private"}, {"192.168.255.255", "private"},
    {"192.169.0.0", NULL},
    /* 198.18/15 */
    {"198.17.255.255", NULL}, {"198.18.0.0", "benchmark"}, {"198.19.255.255", "benchmark"},
    {"198.20.0.0", NULL},
    /* 198.51.100/24 */
    {"198.51.99.255", NULL}, {"198.51.100.0", "documentation"},
    {"198.51.100.255", "documentation"}, {"198.51.101.0", NULL},
    /* 203.0.113/24 */
    {"203.0.112.255", NULL}, {"203.0.113.0", "documentation"}, {"203.0.113.255", "documentation"},
    {"203.0.114.0", NULL},
    /* 224/4, 240/4, broadcast */
    {"223.255.255.255", NULL}, {"224.0.0.0", "multicast"}, {"239.255.255.255", "multicast"},
    {"240.0.0.0", "reserved"}, {"255.255.255.254", "reserved"}, {"255.255.255.255", "broadcast"},
    /* a few ordinary public ones */
    {"8.8.8.8", NULL}, {"1.1.1.1", NULL}, {"93.184.216.34", NULL},

    /* IPv6: ::, ::1, ::/96 */
    {"::", "unspecified"}, {"::1", "loopback"}, {"::2", "ipv4-compatible"},
    {"::8.8.8.8", "ipv4-compatible"}, {"::255.255.255.255", "ipv4-compatible"},
    {"::1:0:0", "ipv6-not-global-unicast"},
    /* ::ffff:0:0/96 mapped */
    {"::ffff:127.0.0.1", "ipv4-mapped-nonpublic"}, {"::ffff:10.1.2.3", "ipv4-mapped-nonpublic"},
    {"::ffff:169.254.169.254", "ipv4-mapped-nonpublic"}, {"::ffff:0.0.0.0", "ipv4-mapped-nonpublic"},
    {"::ffff:8.8.8.8", NULL}, {"::fffe:808:808", "ipv6-not-global-unicast"},
    {"::1:ffff:808:808", "ipv6-not-global-unicast"},
    /* 64:ff9b::/96 NAT64 */
    {"64:ff9b::127.0.0.1", "nat64-nonpublic"}, {"64:ff9b::192.168.1.1", "nat64-nonpublic"},
    {"64:ff9b::8.8.8.8", NULL}, {"64:ff9b::1:808:808", "ipv6-not-global-unicast"},
    {"64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff", "ipv6-not-global-unicast"},
    /* 64:ff9b:1::/48 local-use NAT64 (RFC 8215), RFC 6052 /48 layout */
    {"64:ff9b:1:7f00:0:100::", "nat64-local-nonpublic"},  /* 127.0.0.1 */
    {"64:ff9b:1:a00:0:100::", "nat64-local-nonpublic"},   /* 10.0.0.1 */
    {"64:ff9b:1:808:8:800::", NULL},                      /* 8.8.8.8 */
    {"64:ff9b:1:808:ff08:800::", "nat64-malformed"},      /* u octet set */
    {"64:ff9b:2::", "ipv6-not-global-unicast"},
    /* 100::/64 discard */
    {"100::", "discard"}, {"100::ffff:ffff:ffff:ffff", "discard"},
    {"100:0:0:1::", "ipv6-not-global-unicast"},
    /* fe80::/10, fec0::/10, fc00::/7, ff00::/8 */
    {"fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ipv6-not-global-unicast"}, {"fe80::1", "link-local"},
    {"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "link-local"}, {"fec0::1", "site-local"},
    {"feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "site-local"}, {"ff00::", "multicast"},
    {"fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ipv6-not-global-unicast"},
    {"fc00::", "unique-local"}, {"fd12:3456::1", "unique-local"}, {"ff02::1", "multicast"},
    {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "multicast"},
    /* 2000::/3 edges */
    {"1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ipv6-not-global-unicast"},
    {"2000::1", NULL}, {"3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NULL},
    {"4000::", "ipv6-not-global-unicast"},
    /* 2001::/32 Teredo */
    {"2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NULL}, {"2001::", "teredo"},
    {"2001:0:4136:e378:8000:63bf:3fff:fdd2", "teredo"},
    {"2001:0:ffff:ffff:ffff:ffff:ffff:ffff", "teredo"}, {"2001:1::", NULL},
    /* 2001:10::/28 ORCHID, 2001:20::/28 ORCHIDv2 */
    {"2001:f:ffff:ffff:ffff:ffff:ffff:ffff", NULL}, {"2001:10::", "orchid"},
    {"2001:1f:ffff:ffff:ffff:ffff:ffff:ffff", "orchid"}, {"2001:20::", "orchid-v2"},
    {"2001:2f:ffff:ffff:ffff:ffff:ffff:ffff", "orchid-v2"}, {"2001:30::", NULL},
    /* 2001:db8::/32 */
    {"2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", NULL}, {"2001:db8::", "documentation"},
    {"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "documentation"}, {"2001:db9::", NULL},
    /* 2002::/16 6to4 */
    {"2002:7f00:1::1", "6to4-nonpublic"}, {"2002:a9fe:a9fe::", "6to4-nonpublic"},
    {"2002:c0a8:101::", "6to4-nonpublic"}, {"2002:0:0::", "6to4-nonpublic"},
    {"2002:808:808::1", NULL}, {"2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NULL},
    {"2003::7f00:1", NULL},
    /* ordinary public */
    {"2606:4700::1111", NULL}, {"2a01:4f8::1", NULL},
};

static void to_sa(const char *ip, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(443);
        if (inet_pton(AF_INET6, ip, &in6->sin6_addr) != 1)
            T_FAIL("bad test address %s", ip);
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        in->sin_family = AF_INET;
        in->sin_port = htons(443);
        if (inet_pton(AF_INET, ip, &in->sin_addr) != 1)
            T_FAIL("bad test address %s", ip);
    }
}

int main(void)
{
    struct sockaddr_storage ss;
    struct sockaddr_un_like {
        sa_family_t family;
        char path[20];
    } unix_sa = {AF_UNIX, "x"};
    char buf[64];
    size_t i;

    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const char *got;
        to_sa(rows[i].ip, &ss);
        got = hd_addr_class((struct sockaddr *)&ss);
        t_checks++;
        if ((got == NULL) != (rows[i].expect == NULL) ||
            (got && strcmp(got, rows[i].expect) != 0))
            T_FAIL("%s: class %s, want %s", rows[i].ip, got ? got : "public",
                   rows[i].expect ? rows[i].expect : "public");
        T_EQ_INT(hd_addr_check((struct sockaddr *)&ss, 0),
                 rows[i].expect ? HD_ERR_PRIVATE_ADDR : 0);
        T_EQ_INT(hd_addr_check((struct sockaddr *)&ss, 1), 0);
    }
    T_EQ_INT(hd_addr_check((struct sockaddr *)&unix_sa, 0), HD_ERR_INVALID);
    T_EQ_INT(hd_addr_check((struct sockaddr *)&unix_sa, 1), HD_ERR_INVALID);
    T_EQ_INT(hd_addr_check(NULL, 1), HD_ERR_INVALID);

    to_sa("192.0.2.1", &ss);
    T_EQ_STR(hd_addr_format((struct sockaddr *)&ss, buf, sizeof(buf)), "192.0.2.1:443");
    to_sa("2001:db8::1", &ss);
    T_EQ_STR(hd_addr_format((struct sockaddr *)&ss, buf, sizeof(buf)), "[2001:db8::1]:443");
    T_EQ_STR(hd_addr_format((struct sockaddr *)&ss, buf, 5), "[200"); /* truncated, terminated */
    T_EQ_STR(hd_addr_format((struct sockaddr *)&unix_sa, buf, sizeof(buf)), "?");
    T_DONE();
}
