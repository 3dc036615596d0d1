/*
 * Loopback only: every listening socket of the local environment binds to this machine alone.
 *
 * Loaded with LD_PRELOAD into LocalStack (and so into the DynamoDB Local it starts). A bind() to "any
 * address" becomes a bind to loopback: 0.0.0.0 -> 127.0.0.1, and :: -> ::ffff:127.0.0.1 (an IPv6 socket
 * that still takes the IPv4 loopback connections every client here makes). Why a shim: LocalStack's
 * gateway ignores the host of GATEWAY_LISTEN for IPv4 (runtime/server/twisted.py, 2026.3.0), and DynamoDB
 * Local has no option for its address at all (only -port); both would otherwise listen on every interface,
 * open to anyone on the same network. docs/local-environment.md, "Loopback only".
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

typedef int (*bind_fn)(int, const struct sockaddr *, socklen_t);

int bind(int fd, const struct sockaddr *addr, socklen_t len) {
    static bind_fn real_bind;
    if (!real_bind) real_bind = (bind_fn)dlsym(RTLD_NEXT, "bind");
    if (addr && addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        struct sockaddr_in v4;
        memcpy(&v4, addr, sizeof v4);
        if (v4.sin_addr.s_addr == htonl(INADDR_ANY)) {
            v4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            return real_bind(fd, (const struct sockaddr *)&v4, sizeof v4);
        }
    } else if (addr && addr->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        struct sockaddr_in6 v6;
        memcpy(&v6, addr, sizeof v6);
        if (memcmp(&v6.sin6_addr, &in6addr_any, sizeof in6addr_any) == 0) {
            static const unsigned char mapped_loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1};
            memcpy(&v6.sin6_addr, mapped_loopback, sizeof mapped_loopback);
            return real_bind(fd, (const struct sockaddr *)&v6, sizeof v6);
        }
    }
    return real_bind(fd, addr, len);
}
