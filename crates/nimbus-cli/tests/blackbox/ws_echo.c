/* A WebSocket echo server for the ports-route tests, built static by the test and run inside a
 * sandbox (the busybox image has no WebSocket server): listens on 127.0.0.1:<port>, answers the
 * RFC 6455 handshake (SHA-1 and base64 of the key, written out here), then echoes every text or
 * binary message, answers pings, and returns a close. One client at a time, forever. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static uint32_t rol(uint32_t v, int n) { return (v << n) | (v >> (32 - n)); }

static void sha1(const unsigned char *data, size_t len, unsigned char out[20]) {
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    size_t total = ((len + 8) / 64 + 1) * 64;
    unsigned char *msg = calloc(total, 1);
    memcpy(msg, data, len);
    msg[len] = 0x80;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++) msg[total - 1 - i] = (unsigned char)(bits >> (8 * i));
    for (size_t off = 0; off < total; off += 64) {
        uint32_t w[80];
        for (int i = 0; i < 16; i++)
            w[i] = (uint32_t)msg[off + 4 * i] << 24 | (uint32_t)msg[off + 4 * i + 1] << 16 |
                   (uint32_t)msg[off + 4 * i + 2] << 8 | msg[off + 4 * i + 3];
        for (int i = 16; i < 80; i++) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
        for (int i = 0; i < 80; i++) {
            uint32_t f, k;
            if (i < 20) { f = (b & c) | (~b & d); k = 0x5A827999; }
            else if (i < 40) { f = b ^ c ^ d; k = 0x6ED9EBA1; }
            else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8F1BBCDC; }
            else { f = b ^ c ^ d; k = 0xCA62C1D6; }
            uint32_t t = rol(a, 5) + f + e + k + w[i];
            e = d; d = c; c = rol(b, 30); b = a; a = t;
        }
        h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
    }
    free(msg);
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 4; j++) out[4 * i + j] = (unsigned char)(h[i] >> (24 - 8 * j));
}

static void base64(const unsigned char *in, size_t len, char *out) {
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < len ? in[i + 2] : 0);
        out[o++] = t[v >> 18 & 63];
        out[o++] = t[v >> 12 & 63];
        out[o++] = i + 1 < len ? t[v >> 6 & 63] : '=';
        out[o++] = i + 2 < len ? t[v & 63] : '=';
    }
    out[o] = 0;
}

static int read_full(int fd, unsigned char *buf, size_t len) {
    for (size_t got = 0; got < len;) {
        ssize_t n = read(fd, buf + got, len - got);
        if (n <= 0) return -1;
        got += (size_t)n;
    }
    return 0;
}

static int send_frame(int fd, int opcode, const unsigned char *payload, size_t len) {
    unsigned char head[10];
    size_t h = 0;
    head[h++] = (unsigned char)(0x80 | opcode);
    if (len < 126) head[h++] = (unsigned char)len;
    else if (len < 65536) { head[h++] = 126; head[h++] = (unsigned char)(len >> 8); head[h++] = (unsigned char)len; }
    else { head[h++] = 127; for (int i = 7; i >= 0; i--) head[h++] = (unsigned char)((uint64_t)len >> (8 * i)); }
    if (write(fd, head, h) != (ssize_t)h) return -1;
    return len == 0 || write(fd, payload, len) == (ssize_t)len ? 0 : -1;
}

static void serve(int fd) {
    char req[8192];
    size_t got = 0;
    while (got < sizeof req - 1) {
        ssize_t n = read(fd, req + got, sizeof req - 1 - got);
        if (n <= 0) return;
        got += (size_t)n;
        req[got] = 0;
        if (strstr(req, "\r\n\r\n")) break;
    }
    char *key = NULL;
    for (char *line = strtok(req, "\r\n"); line; line = strtok(NULL, "\r\n"))
        if (strncasecmp(line, "Sec-WebSocket-Key:", 18) == 0) { key = line + 18; while (*key == ' ') key++; }
    if (!key) return;
    char joined[256];
    snprintf(joined, sizeof joined, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key);
    unsigned char digest[20];
    sha1((unsigned char *)joined, strlen(joined), digest);
    char accept[64];
    base64(digest, 20, accept);
    char answer[256];
    int n = snprintf(answer, sizeof answer,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n\r\n", accept);
    if (write(fd, answer, (size_t)n) != n) return;
    for (;;) {
        unsigned char h[2], mask[4];
        if (read_full(fd, h, 2)) return;
        int opcode = h[0] & 15;
        uint64_t len = h[1] & 127;
        if (len == 126) { unsigned char l[2]; if (read_full(fd, l, 2)) return; len = (uint64_t)l[0] << 8 | l[1]; }
        else if (len == 127) { unsigned char l[8]; if (read_full(fd, l, 8)) return; len = 0; for (int i = 0; i < 8; i++) len = len << 8 | l[i]; }
        if (len > (1 << 24)) return;
        if ((h[1] & 128) && read_full(fd, mask, 4)) return;
        unsigned char *payload = malloc(len ? len : 1);
        if (read_full(fd, payload, len)) { free(payload); return; }
        if (h[1] & 128) for (uint64_t i = 0; i < len; i++) payload[i] ^= mask[i % 4];
        int stop = opcode == 8;
        int reply = opcode == 9 ? 10 : opcode;
        if (opcode != 10 && send_frame(fd, reply, payload, len)) stop = 1;
        free(payload);
        if (stop) return;
    }
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 9000;
    int s = socket(AF_INET, SOCK_STREAM, 0), on = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s, (struct sockaddr *)&addr, sizeof addr) || listen(s, 16)) { perror("listen"); return 1; }
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c < 0) continue;
        serve(c);
        close(c);
    }
}
