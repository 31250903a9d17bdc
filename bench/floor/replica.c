// The floor of a durable 3-replica write (make bench-floor, docs/benchmarks.md): the least work a
// replicated, fsync-before-ack write can cost on this machine. Not a competitor and not a store:
// no Raft, no elections, no state machine, no reads, no recovery. It is the chain alone —
//
//   client -> leader; leader forwards the batch to both followers, then writes and flushes it
//   itself; each follower writes, flushes and acks; the leader answers a request once its own
//   flush and one follower's ack cover it (a majority of 3 has it on disk).
//
// Every flush is pwrite + fdatasync into a file the benchmark pre-zeroed (so a write overwrites
// allocated blocks and fdatasync has no metadata to flush), wrapping to offset 0 at its end.
// Two ways to run the same chain:
//   threads  a flusher thread per replica batches whatever arrived during the previous flush
//            (and, on the leader, a thread per follower reading acks);
//   inline   one thread: read what the socket has, flush it, reply (the leader uses epoll).
//
// usage: replica leader   threads|inline DATAFILE CLIENT_PORT FOLLOWER_PORT FOLLOWER_PORT
//        replica follower threads|inline DATAFILE PORT
// Everything listens and connects on 127.0.0.1; a replica exits when a peer hangs up.
//
// Frames are [u32 length][payload], little-endian:
//   client -> leader     u64 request id, 100-byte value (REQ bytes)
//   leader -> client     u64 request id (one frame per answered request, in order)
//   leader -> follower   u64 index of the batch's last request, then the batch's requests
//   follower -> leader   u64 index up to which the follower has flushed
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define REQ 108                 // request payload: id + value
#define ACK 12                  // [len 8][u64]
#define BUF_BYTES (16u << 20)   // socket read buffers (far above what 64 in flight can send)
#define RING (1u << 20)         // request ids by index, until answered

static void die(const char *what) {
  perror(what);
  exit(1);
}

// ---- sockets ----

static int write_all(int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n) {
    ssize_t r = write(fd, p, n);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

static int read_all(int fd, void *buf, size_t n) {
  char *p = buf;
  while (n) {
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

static struct sockaddr_in loopback(int port) {
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

static void no_delay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/** Listens on the port and returns its first connection. */
static int accept_one(int port) {
  int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = loopback(port);
  if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 1)) die("listen");
  int c = accept(s, NULL, NULL);
  if (c < 0) die("accept");
  close(s);
  no_delay(c);
  return c;
}

/** Connects to the port, retrying for up to 10 s while the peer starts. */
static int connect_to(int port) {
  for (int i = 0; i < 200; i++) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = loopback(port);
    if (connect(s, (struct sockaddr *)&a, sizeof a) == 0) {
      no_delay(s);
      return s;
    }
    close(s);
    usleep(50000);
  }
  die("connect");
  return -1;
}

static void send_index(int fd, uint64_t index) {
  char f[ACK];
  uint32_t len = 8;
  memcpy(f, &len, 4);
  memcpy(f + 4, &index, 8);
  if (write_all(fd, f, ACK)) exit(0);
}

// ---- the data file ----

static int data_fd;
static off_t data_size, data_offset;

static void open_data(const char *path) {
  struct stat st;
  data_fd = open(path, O_RDWR);
  if (data_fd < 0 || fstat(data_fd, &st)) die(path);
  data_size = st.st_size;
  if (data_size < (off_t)BUF_BYTES) {
    fprintf(stderr, "%s: pre-zero at least %u bytes\n", path, BUF_BYTES);
    exit(1);
  }
}

static void flush(const char *buf, size_t n) {
  if (data_offset + (off_t)n > data_size) data_offset = 0;
  if (pwrite(data_fd, buf, n, data_offset) != (ssize_t)n) die("pwrite");
  data_offset += (off_t)n;
  if (fdatasync(data_fd)) die("fdatasync");
}

// ---- threads: a flusher thread takes everything queued since its previous flush ----

static pthread_mutex_t queue_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t queue_cv = PTHREAD_COND_INITIALIZER;
static char *queued;
static size_t queued_len, queued_cap;
static uint64_t queued_last;  // index of the last request queued
static void (*on_flushed)(uint64_t last);

static void enqueue(const char *buf, size_t n, uint64_t last) {
  pthread_mutex_lock(&queue_mu);
  if (queued_len + n > queued_cap) {
    queued_cap = (queued_len + n) * 2;
    if (!(queued = realloc(queued, queued_cap))) die("realloc");
  }
  memcpy(queued + queued_len, buf, n);
  queued_len += n;
  queued_last = last;
  pthread_cond_signal(&queue_cv);
  pthread_mutex_unlock(&queue_mu);
}

static void *flusher(void *unused) {
  (void)unused;
  char *buf = NULL;
  size_t cap = 0;
  for (;;) {
    pthread_mutex_lock(&queue_mu);
    while (queued_len == 0) pthread_cond_wait(&queue_cv, &queue_mu);
    if (cap < queued_len) {
      cap = queued_cap;
      if (!(buf = realloc(buf, cap))) die("realloc");
    }
    size_t n = queued_len;
    uint64_t last = queued_last;
    memcpy(buf, queued, n);
    queued_len = 0;
    pthread_mutex_unlock(&queue_mu);
    flush(buf, n);
    on_flushed(last);
  }
  return NULL;
}

static void start_thread(void *(*fn)(void *), void *arg) {
  pthread_t t;
  if (pthread_create(&t, NULL, fn, arg)) die("pthread_create");
}

// ---- follower ----

static int leader_fd;

static void ack_leader(uint64_t last) { send_index(leader_fd, last); }

static void follower_threads(void) {
  on_flushed = ack_leader;
  start_thread(flusher, NULL);
  char *buf = malloc(BUF_BYTES);
  for (;;) {
    uint32_t len;
    uint64_t last;
    if (read_all(leader_fd, &len, 4) || len < 8 || len > BUF_BYTES || read_all(leader_fd, buf, len)) exit(0);
    memcpy(&last, buf, 8);
    enqueue(buf + 8, len - 8, last);
  }
}

/** Reads what the leader sent, flushes every complete batch in it at once, acks the last. */
static void follower_inline(void) {
  char *in = malloc(BUF_BYTES), *out = malloc(BUF_BYTES);
  size_t have = 0;
  for (;;) {
    ssize_t r = read(leader_fd, in + have, BUF_BYTES - have);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) exit(0);
    have += (size_t)r;
    size_t off = 0, out_len = 0;
    uint64_t last = 0;
    uint32_t len;
    while (have - off >= 4 && (memcpy(&len, in + off, 4), have - off >= 4 + (size_t)len)) {
      memcpy(&last, in + off + 4, 8);
      memcpy(out + out_len, in + off + 12, len - 8);
      out_len += len - 8;
      off += 4 + len;
    }
    memmove(in, in + off, have - off);
    have -= off;
    if (!out_len) continue;
    flush(out, out_len);
    send_index(leader_fd, last);
  }
}

// ---- leader ----

static int client_fd, follower_fd[2];
static pthread_mutex_t commit_mu = PTHREAD_MUTEX_INITIALIZER;  // threads: guards what follows
static uint64_t own_flushed, follower_flushed[2], answered, last_index;
static uint64_t request_ids[RING];

/** Answers every request that the leader and one follower have flushed. */
static void answer_committed(void) {
  uint64_t best = follower_flushed[0] > follower_flushed[1] ? follower_flushed[0] : follower_flushed[1];
  uint64_t committed = own_flushed < best ? own_flushed : best;
  if (committed <= answered) return;
  size_t n = committed - answered;
  char *out = malloc(n * ACK), *p = out;
  for (uint64_t i = answered + 1; i <= committed; i++, p += ACK) {
    uint32_t len = 8;
    memcpy(p, &len, 4);
    memcpy(p + 4, &request_ids[i % RING], 8);
  }
  answered = committed;
  if (write_all(client_fd, out, n * ACK)) exit(0);
  free(out);
}

/**
 * Takes the complete requests in `in` into one batch frame in `batch` (header then requests),
 * numbers them and sends it to both followers. Returns the bytes consumed from `in` and sets
 * *requests_len (0 when no request was complete) and *last.
 */
static size_t forward_batch(const char *in, size_t have, char *batch, size_t *requests_len, uint64_t *last) {
  size_t off = 0, n = 0;
  uint32_t len;
  while (have - off >= 4 && (memcpy(&len, in + off, 4), have - off >= 4 + (size_t)len)) {
    if (len != REQ) {
      fprintf(stderr, "leader: request of %u bytes, expected %d\n", len, REQ);
      exit(1);
    }
    memcpy(batch + 12 + n * REQ, in + off + 4, REQ);
    n++;
    off += 4 + len;
  }
  *requests_len = n * REQ;
  if (!n) return off;
  pthread_mutex_lock(&commit_mu);
  for (size_t i = 0; i < n; i++) memcpy(&request_ids[(last_index + 1 + i) % RING], batch + 12 + i * REQ, 8);
  last_index += n;
  *last = last_index;
  pthread_mutex_unlock(&commit_mu);
  uint32_t frame_len = 8 + (uint32_t)(n * REQ);
  memcpy(batch, &frame_len, 4);
  memcpy(batch + 4, last, 8);
  // To the followers before the leader's own flush, so that the three flushes overlap.
  if (write_all(follower_fd[0], batch, 4 + frame_len) || write_all(follower_fd[1], batch, 4 + frame_len)) exit(0);
  return off;
}

static void leader_flushed(uint64_t last) {
  pthread_mutex_lock(&commit_mu);
  own_flushed = last;
  answer_committed();
  pthread_mutex_unlock(&commit_mu);
}

static void *ack_reader(void *which) {
  int k = (int)(intptr_t)which;
  for (;;) {
    char f[ACK];
    if (read_all(follower_fd[k], f, ACK)) exit(0);
    pthread_mutex_lock(&commit_mu);
    memcpy(&follower_flushed[k], f + 4, 8);
    answer_committed();
    pthread_mutex_unlock(&commit_mu);
  }
  return NULL;
}

/* Reads what the client sent into in[0, *have), forwards its whole requests to both followers
 * (forward_batch) and keeps a partial one; returns the bytes of requests forwarded (0: none, or
 * an interrupted read) with the last request's id in *last. Exits when the client is gone. */
static size_t read_and_forward(char *in, size_t *have, char *batch, uint64_t *last) {
  ssize_t r = read(client_fd, in + *have, BUF_BYTES - *have);
  if (r < 0 && errno == EINTR) return 0;
  if (r <= 0) exit(0);
  *have += (size_t)r;
  size_t requests_len;
  size_t used = forward_batch(in, *have, batch, &requests_len, last);
  memmove(in, in + used, *have - used);
  *have -= used;
  return requests_len;
}

static void leader_threads(void) {
  on_flushed = leader_flushed;
  start_thread(flusher, NULL);
  start_thread(ack_reader, (void *)(intptr_t)0);
  start_thread(ack_reader, (void *)(intptr_t)1);
  char *in = malloc(BUF_BYTES), *batch = malloc(BUF_BYTES + 12);
  size_t have = 0;
  for (;;) {
    uint64_t last;
    size_t requests_len = read_and_forward(in, &have, batch, &last);
    if (requests_len) enqueue(batch + 12, requests_len, last);
  }
}

static void leader_inline(void) {
  int ep = epoll_create1(0), fds[3] = {client_fd, follower_fd[0], follower_fd[1]};
  for (int i = 0; i < 3; i++) {
    struct epoll_event e = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &e)) die("epoll_ctl");
  }
  char *in = malloc(BUF_BYTES), *batch = malloc(BUF_BYTES + 12);
  char acks[2][4096];
  size_t have = 0, acks_have[2] = {0, 0};
  for (;;) {
    struct epoll_event ev[3];
    int n = epoll_wait(ep, ev, 3, -1);
    for (int e = 0; e < n; e++) {
      uint32_t w = ev[e].data.u32;
      if (w == 0) {  // requests: forward, flush, answer what is committed
        uint64_t last;
        size_t requests_len = read_and_forward(in, &have, batch, &last);
        if (!requests_len) continue;
        flush(batch + 12, requests_len);
        own_flushed = last;
        answer_committed();
      } else {  // a follower's acks: the last one counts
        int k = (int)w - 1;
        ssize_t r = read(follower_fd[k], acks[k] + acks_have[k], sizeof acks[k] - acks_have[k]);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) exit(0);
        acks_have[k] += (size_t)r;
        size_t off = 0;
        for (; acks_have[k] - off >= ACK; off += ACK) memcpy(&follower_flushed[k], acks[k] + off + 4, 8);
        memmove(acks[k], acks[k] + off, acks_have[k] - off);
        acks_have[k] -= off;
        answer_committed();
      }
    }
  }
}

int main(int argc, char **argv) {
  int leader = argc == 7 && !strcmp(argv[1], "leader"), follower = argc == 5 && !strcmp(argv[1], "follower");
  int threads = argc > 2 && !strcmp(argv[2], "threads"), inline_ = argc > 2 && !strcmp(argv[2], "inline");
  if (!(leader || follower) || !(threads || inline_)) {
    fprintf(stderr, "usage: replica leader threads|inline DATAFILE CLIENT_PORT FOLLOWER_PORT FOLLOWER_PORT\n"
                    "       replica follower threads|inline DATAFILE PORT\n");
    return 2;
  }
  open_data(argv[3]);
  if (follower) {
    leader_fd = accept_one(atoi(argv[4]));
    threads ? follower_threads() : follower_inline();
  } else {
    follower_fd[0] = connect_to(atoi(argv[5]));
    follower_fd[1] = connect_to(atoi(argv[6]));
    client_fd = accept_one(atoi(argv[4]));
    threads ? leader_threads() : leader_inline();
  }
  return 0;
}
