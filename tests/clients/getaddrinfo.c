/* A stub resolver client as an application uses one: getaddrinfo() on the name given, every
 * address printed on its own line. Built static against musl by tests/stub_resolvers.rs, so
 * that the resolver under test is musl's, whatever libc the machine has. */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s NAME\n", argv[0]);
        return 2;
    }
    struct addrinfo hints, *result, *entry;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int error = getaddrinfo(argv[1], NULL, &hints, &result);
    if (error != 0) {
        fprintf(stderr, "%s: %s\n", argv[1], gai_strerror(error));
        return 1;
    }
    for (entry = result; entry != NULL; entry = entry->ai_next) {
        char text[INET6_ADDRSTRLEN];
        const void *address = entry->ai_family == AF_INET
            ? (const void *)&((struct sockaddr_in *)entry->ai_addr)->sin_addr
            : (const void *)&((struct sockaddr_in6 *)entry->ai_addr)->sin6_addr;
        if (inet_ntop(entry->ai_family, address, text, sizeof text) != NULL) {
            puts(text);
        }
    }
    freeaddrinfo(result);
    return 0;
}
