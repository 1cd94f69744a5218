/* The address guard: is a destination address public? Checked at connect time on the
 * address actually dialled (so DNS rebinding cannot slip past). */
#ifndef HD_ADDR_H
#define HD_ADDR_H

#include <sys/socket.h>

/* Returns 0 when sa is a public unicast address (or allow_private is nonzero and sa is any
 * valid AF_INET/AF_INET6 address), HD_ERR_PRIVATE_ADDR when it is loopback, private,
 * link-local, CGNAT, multicast, reserved, documentation, benchmark, unspecified, or an IPv6
 * form embedding such an IPv4 address (mapped, compatible, NAT64 64:ff9b::/96, 6to4,
 * Teredo), HD_ERR_INVALID for other families. */
int hd_addr_check(const struct sockaddr *sa, int allow_private);

/* Returns NULL when sa is public unicast, else a static name of the range that makes it
 * non-public ("loopback", "private", "6to4-nonpublic", ...) or "invalid" for other families.
 * Used for logs and tests; hd_addr_check is the decision. */
const char *hd_addr_class(const struct sockaddr *sa);

/* Formats sa as "1.2.3.4:443" or "[::1]:443" into buf. Returns buf. */
char *hd_addr_format(const struct sockaddr *sa, char *buf, size_t cap);

#endif
