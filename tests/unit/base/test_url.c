/* URL parser: many good and bad inbox URLs. */
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "t.h"
#include "url.h"

struct good {
    const char *in;
    int tls;
    const char *host;
    unsigned port;
    const char *authority;
    const char *path;
};

static const struct good goods[] = {
    {"https://mastodon.social/inbox", 1, "mastodon.social", 443, "mastodon.social", "/inbox"},
    {"http://example.com", 0, "example.com", 80, "example.com", "/"},
    {"https://example.com", 1, "example.com", 443, "example.com", "/"},
    {"HTTPS://Example.COM/Users/Alice/Inbox", 1, "example.com", 443, "example.com",
     "/Users/Alice/Inbox"},
    {"https://example.com:443/inbox", 1, "example.com", 443, "example.com", "/inbox"},
    {"http://example.com:80/inbox", 0, "example.com", 80, "example.com", "/inbox"},
    {"https://example.com:80/inbox", 1, "example.com", 80, "example.com:80", "/inbox"},
    {"http://example.com:443/inbox", 0, "example.com", 443, "example.com:443", "/inbox"},
    {"https://example.com:8443/inbox", 1, "example.com", 8443, "example.com:8443", "/inbox"},
    {"https://example.com:65535/", 1, "example.com", 65535, "example.com:65535", "/"},
    {"https://example.com:1/", 1, "example.com", 1, "example.com:1", "/"},
    {"https://example.com:00443/", 1, "example.com", 443, "example.com", "/"},
    {"https://example.com/inbox?x=1&y=2", 1, "example.com", 443, "example.com",
     "/inbox?x=1&y=2"},
    {"https://example.com?x=1", 1, "example.com", 443, "example.com", "/?x=1"},
    {"https://example.com/inbox#frag", 1, "example.com", 443, "example.com", "/inbox"},
    {"https://example.com#frag", 1, "example.com", 443, "example.com", "/"},
    {"https://example.com/a%20b/%E2%9C%93", 1, "example.com", 443, "example.com",
     "/a%20b/%E2%9C%93"},
    {"https://example.com/caf\xc3\xa9", 1, "example.com", 443, "example.com", "/caf%C3%A9"},
    {"https://example.com/a\"b<c>d`e{f}g|h^i", 1, "example.com", 443, "example.com",
     "/a%22b%3Cc%3Ed%60e%7Bf%7Dg%7Ch%5Ei"},
    {"https://example.com./inbox", 1, "example.com", 443, "example.com", "/inbox"},
    {"https://sub_domain.example.com/", 1, "sub_domain.example.com", 443,
     "sub_domain.example.com", "/"},
    {"https://xn--bcher-kva.example/", 1, "xn--bcher-kva.example", 443, "xn--bcher-kva.example",
     "/"},
    {"https://b\xc3\xbc" "cher.example/inbox", 1, "xn--bcher-kva.example", 443,
     "xn--bcher-kva.example", "/inbox"},
    {"https://B\xc3\x9c" "CHER.example/", 1, "xn--bcher-kva.example", 443,
     "xn--bcher-kva.example", "/"},
    {"https://stra\xc3\x9f" "e.example/", 1, "xn--strae-oqa.example", 443, "xn--strae-oqa.example",
     "/"},
    {"https://\xe4\xbe\x8b\xe3\x81\x88.jp/", 1, "xn--r8jz45g.jp", 443, "xn--r8jz45g.jp", "/"},
    {"https://b%C3%BCcher.example/", 1, "xn--bcher-kva.example", 443, "xn--bcher-kva.example",
     "/"},
    {"https://ex%61mple.com/", 1, "example.com", 443, "example.com", "/"},
    {"https://EX%41MPLE.com/", 1, "example.com", 443, "example.com", "/"},
    {"https://127.0.0.1/inbox", 1, "127.0.0.1", 443, "127.0.0.1", "/inbox"},
    {"http://127.0.0.1:8080/inbox", 0, "127.0.0.1", 8080, "127.0.0.1:8080", "/inbox"},
    {"https://[::1]/inbox", 1, "::1", 443, "[::1]", "/inbox"},
    {"https://[::1]:8443/inbox", 1, "::1", 8443, "[::1]:8443", "/inbox"},
    {"https://[2001:DB8:0:0:0:0:0:1]/", 1, "2001:db8::1", 443, "[2001:db8::1]", "/"},
    {"https://[::ffff:1.2.3.4]/", 1, "::ffff:1.2.3.4", 443, "[::ffff:1.2.3.4]", "/"},
    {"https://a.b-c.d/", 1, "a.b-c.d", 443, "a.b-c.d", "/"},
    {"https://1a.example/", 1, "1a.example", 443, "1a.example", "/"},
    {"https://example.123a/", 1, "example.123a", 443, "example.123a", "/"},
    {"https://localhost/", 1, "localhost", 443, "localhost", "/"},
    {"https://example.com/@alice/inbox", 1, "example.com", 443, "example.com", "/@alice/inbox"},
    {"https://example.com/a:b/c", 1, "example.com", 443, "example.com", "/a:b/c"},
    {"https://example.com/users/x?page=true#main-key", 1, "example.com", 443, "example.com",
     "/users/x?page=true"},
};

static const char *const bads[] = {
    "",
    "example.com/inbox",
    "ftp://example.com/",
    "file:///etc/passwd",
    "javascript:alert(1)",
    "https:example.com",
    "https:/example.com",
    "https://",
    "https:///inbox",
    "https://:443/inbox",
    "https://?x",
    "https://#x",
    "https://user@example.com/",
    "https://user:pass@example.com/",
    "https://@example.com/",
    "https://evil.example\\@good.example/",
    "https://example.com\\inbox",
    "https://example.com/a\\b",
    "https://example.com:/",
    "https://example.com:0/",
    "https://example.com:65536/",
    "https://example.com:99999/",
    "https://example.com:443443/",
    "https://example.com:-1/",
    "https://example.com:+443/",
    "https://example.com:44a/",
    "https://example.com:443:443/",
    "https://exa mple.com/",
    "https://example.com/a b",
    " https://example.com/",
    "https://example.com/ ",
    "https://example.com/\t",
    "https://exa\tmple.com/",
    "https://example.com/\r\nHost: evil",
    "https://example.com/\n",
    "https://example.com/\x7f",
    "https://example.com/#a b",
    "https://exa%mple.com/",
    "https://exa%2mple.com/",
    "https://example.com%/",
    "https://example.com%2/",
    "https://exa%zzmple.com/",
    "https://exa%00mple.com/",
    "https://exa%20mple.com/",
    "https://example.com%2fevil/",
    "https://example.com%40evil/",
    "https://example.com%3a80/",
    "https://example.com/%zz",
    "https://example.com/%",
    "https://example.com/%4",
    "https://[::1/",
    "https://::1/",
    "https://[::1]x/",
    "https://[::1]:/",
    "https://[fe80::1%25eth0]/",
    "https://[1.2.3.4]/",
    "https://[::g]/",
    "https://[]/",
    "https://exa[mple.com/",
    "https://-example.com/",
    "https://example-.com/",
    "https://exa..mple.com/",
    "https://.example.com/",
    "https://example.com../",
    "https://./",
    "https://0x7f.1/",
    "https://0x7f000001/",
    "https://2130706433/",
    "https://127.1/",
    "https://0177.0.0.1/",
    "https://127.0.0.1.2/",
    "https://256.0.0.1/",
    "https://1.2.3.04/",
    "https://example.1/",
    "https://exa<mple.com/",
    "https://exa\"mple.com/",
    "https://exa|mple.com/",
    "https://xn--.example/",
    "https://\xff\xfe.example/",
    "https://\xe2\x80\x8b.example/",
};

static void check_good(const struct good *g)
{
    struct hd_url u;
    char buf[HD_URL_MAX + 300], want[HD_URL_MAX + 300];
    int rv = hd_url_parse(g->in, &u);

    if (rv != 0)
        T_FAIL("good URL refused (%d): %s", rv, g->in);
    T_EQ_INT(u.tls, g->tls);
    T_EQ_STR(u.host, g->host);
    T_EQ_INT(u.port, g->port);
    T_EQ_STR(u.authority, g->authority);
    T_EQ_STR(u.path, g->path);
    T_EQ_INT(hd_url_format(&u, buf, sizeof(buf)), 0);
    snprintf(want, sizeof(want), "%s://%s%s", g->tls ? "https" : "http", g->authority, g->path);
    T_EQ_STR(buf, want);
    /* Normalisation is idempotent: the formatted URL parses to the same thing. */
    {
        struct hd_url u2;
        T_EQ_INT(hd_url_parse(buf, &u2), 0);
        T_EQ_STR(u2.host, u.host);
        T_EQ_STR(u2.authority, u.authority);
        T_EQ_STR(u2.path, u.path);
        T_EQ_INT(u2.port, u.port);
    }
}

static void test_lengths(void)
{
    static char url[HD_URL_MAX + 64], label[80];
    struct hd_url u;
    char small[16];
    size_t n;

    /* Longest accepted: HD_URL_MAX - 1 bytes. */
    strcpy(url, "https://example.com/");
    n = strlen(url);
    memset(url + n, 'a', HD_URL_MAX - 1 - n);
    url[HD_URL_MAX - 1] = '\0';
    T_EQ_INT(hd_url_parse(url, &u), 0);
    T_EQ_INT(strlen(u.path), HD_URL_MAX - 1 - n + 1);
    url[HD_URL_MAX - 1] = 'a';
    url[HD_URL_MAX] = '\0';
    T_EQ_INT(hd_url_parse(url, &u), HD_ERR_INVALID);
    /* A path that only grows past the cap when encoded. */
    strcpy(url, "https://example.com/");
    n = strlen(url);
    memset(url + n, '"', HD_URL_MAX / 2);
    url[n + HD_URL_MAX / 2] = '\0';
    T_EQ_INT(hd_url_parse(url, &u), HD_ERR_INVALID);

    /* Labels: 63 ok, 64 refused. */
    memset(label, 'a', 63);
    label[63] = '\0';
    snprintf(url, sizeof(url), "https://%s.example/", label);
    T_EQ_INT(hd_url_parse(url, &u), 0);
    snprintf(url, sizeof(url), "https://%sa.example/", label);
    T_EQ_INT(hd_url_parse(url, &u), HD_ERR_INVALID);
    /* Host: 253 ok, 254 refused. 4 x 63 + 3 dots = 255; build 253 = 63+1+63+1+63+1+61. */
    snprintf(url, sizeof(url), "https://%s.%s.%s.%.61s/", label, label, label, label);
    T_EQ_INT(hd_url_parse(url, &u), 0);
    T_EQ_INT(strlen(u.host), 253);
    snprintf(url, sizeof(url), "https://%s.%s.%s.%.62s/", label, label, label, label);
    T_EQ_INT(hd_url_parse(url, &u), HD_ERR_INVALID);

    /* Output untouched on failure; format refuses a small buffer. */
    memset(&u, 0x5a, sizeof(u));
    T_EQ_INT(hd_url_parse("ftp://x/", &u), HD_ERR_INVALID);
    T_EQ_INT((unsigned char)u.host[0], 0x5a);
    T_EQ_INT(hd_url_parse("https://example.com/inbox", &u), 0);
    T_EQ_INT(hd_url_format(&u, small, sizeof(small)), HD_ERR_INVALID);
    T_EQ_INT(hd_url_parse(NULL, &u), HD_ERR_INVALID);
}

/* hd_url_parse_path answers as hd_url_parse for every URL that begins with the origin of one
 * parsed before: the good URLs' origins followed by good and bad rests, some of which make
 * another authority (a longer host or a port), so that the whole URL must be parsed. */
static void test_same_origin(void)
{
    static const char *const rests[] = {
        "",         "/",      "/users/a/inbox", "?q=1",   "#frag",   "/a b",   "/\x7f",
        "/%zz",     "/%41",   "/\"x\"",         "2/inbox",  ":8080/",  ":0/",    ":99999/",
        "\\x",      ".evil/", "@evil/",         "/a#b c", "/\t",      "a",      "-/",
        "/\xc3\xa9"};
    char url[HD_URL_MAX + 64], origin[HD_URL_MAX];
    struct hd_url first, fast, slow;
    size_t olen;

    for (size_t i = 0; i < sizeof(goods) / sizeof(goods[0]); i++) {
        T_EQ_INT(hd_url_parse_origin(goods[i].in, &first, &olen), 0);
        T_OK(olen > 0 && olen <= strlen(goods[i].in));
        memcpy(origin, goods[i].in, olen);
        origin[olen] = '\0';
        for (size_t j = 0; j < sizeof(rests) / sizeof(rests[0]); j++) {
            int rf, rs;
            snprintf(url, sizeof(url), "%s%s", origin, rests[j]);
            memset(&fast, 0x5a, sizeof(fast));
            rf = hd_url_parse_path(url, olen, &first, &fast);
            rs = hd_url_parse(url, &slow);
            if (rf != rs)
                T_FAIL("%s: parse_path %d, parse %d", url, rf, rs);
            if (rs != 0)
                continue;
            T_EQ_INT(fast.tls, slow.tls);
            T_EQ_INT(fast.port, slow.port);
            T_EQ_STR(fast.host, slow.host);
            T_EQ_STR(fast.authority, slow.authority);
            T_EQ_STR(fast.path, slow.path);
        }
    }
    /* The same parse as source and destination: a whole parse. */
    T_EQ_INT(hd_url_parse_origin("https://example.com/a", &first, &olen), 0);
    T_EQ_INT(hd_url_parse_path("https://example.com/b", olen, &first, &first), 0);
    T_EQ_STR(first.path, "/b");
}

int main(void)
{
    size_t i;
    struct hd_url u;

    for (i = 0; i < sizeof(goods) / sizeof(goods[0]); i++)
        check_good(&goods[i]);
    for (i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
        int rv = hd_url_parse(bads[i], &u);
        t_checks++;
        if (rv != HD_ERR_INVALID)
            T_FAIL("bad URL accepted (%d): %s -> host=%s path=%s", rv, bads[i],
                   rv == 0 ? u.host : "", rv == 0 ? u.path : "");
    }
    test_lengths();
    test_same_origin();
    T_DONE();
}
