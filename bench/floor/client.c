// The load generator of the floor chains (bench/floor/replica.c and replica.ts; make bench-floor):
// one TCP connection to the leader, requests of a u64 id and a 100-byte value, in one of two shapes
//   open    Poisson arrivals at RATE/s; latency counted from each arrival's intended time, so a
//           slow server is not excused by a generator that waited for it
//   closed  INFLIGHT requests outstanding, each answer sends the next
// After WARMUP_S seconds it measures MEASURE_S seconds: latencies of the requests sent (open) or
// answered (closed) in the window, and, over the window, the CPU time and context switches of the
// server processes PID... (from /proc) and the CPU nobody of us used (other people's load: a
// noisy run shows here). Then it stops sending, waits for every answer (each id exactly once, or
// it fails) and prints one JSON line.
//
// usage: client PORT open RATE|closed INFLIGHT WARMUP_S MEASURE_S PID...
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_REQUESTS 8000000
#define MAX_PIDS 8
#define REQ_FRAME 112  // [u32 108][u64 id][100-byte value]
#define ANSWER 12      // [u32 8][u64 id]

static int server_pids[MAX_PIDS], n_pids;
static double ticks_per_s;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/** CPU seconds of the server processes (every thread, exited ones included). */
static double server_cpu(void) {
  double s = 0;
  for (int i = 0; i < n_pids; i++) {
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/stat", server_pids[i]);
    FILE *f = fopen(path, "r");
    if (!f) continue;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    unsigned long utime, stime;  // fields 14 and 15; the 3rd follows the ")" of the command name
    char *p = strrchr(buf, ')');
    if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) == 2) s += (double)(utime + stime) / ticks_per_s;
  }
  return s;
}

/** Context switches (voluntary and not) of every live thread of the server processes. */
static long server_switches(void) {
  long s = 0;
  for (int i = 0; i < n_pids; i++) {
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/task", server_pids[i]);
    DIR *d = opendir(dir);
    if (!d) continue;
    struct dirent *e;
    while ((e = readdir(d))) {
      if (e->d_name[0] == '.') continue;
      char path[400], line[256];
      snprintf(path, sizeof path, "%s/%s/status", dir, e->d_name);
      FILE *f = fopen(path, "r");
      if (!f) continue;
      while (fgets(line, sizeof line, f)) {
        long v;
        if (sscanf(line, "voluntary_ctxt_switches: %ld", &v) == 1 || sscanf(line, "nonvoluntary_ctxt_switches: %ld", &v) == 1) s += v;
      }
      fclose(f);
    }
    closedir(d);
  }
  return s;
}

/** Busy CPU seconds of the whole machine (/proc/stat: all but idle and iowait). */
static double machine_busy(void) {
  unsigned long long user, nice, sys, idle, iowait, irq, softirq, steal;
  FILE *f = fopen("/proc/stat", "r");
  if (!f) return 0;
  int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &user, &nice, &sys, &idle, &iowait, &irq, &softirq, &steal);
  fclose(f);
  return n == 8 ? (double)(user + nice + sys + irq + softirq + steal) / ticks_per_s : 0;
}

static double own_cpu(void) {
  struct rusage r;
  getrusage(RUSAGE_SELF, &r);
  return (double)r.ru_utime.tv_sec + (double)r.ru_utime.tv_usec * 1e-6 + (double)r.ru_stime.tv_sec + (double)r.ru_stime.tv_usec * 1e-6;
}

struct sample {
  double server_cpu, own_cpu, machine_busy;
  long switches;
};

static struct sample take_sample(void) { return (struct sample){server_cpu(), own_cpu(), machine_busy(), server_switches()}; }

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static int conn;
static double *sent_at;  // by request id; -1 once answered
static uint64_t n_sent;

static void send_request(double at) {
  if (n_sent == MAX_REQUESTS) {
    fprintf(stderr, "client: more than %d requests\n", MAX_REQUESTS);
    exit(1);
  }
  char f[REQ_FRAME];
  uint32_t len = REQ_FRAME - 4;
  uint64_t id = n_sent;
  memcpy(f, &len, 4);
  memcpy(f + 4, &id, 8);
  memset(f + 12, 'v', REQ_FRAME - 12);
  sent_at[n_sent++] = at;
  for (size_t off = 0; off < REQ_FRAME;) {
    ssize_t r = write(conn, f + off, REQ_FRAME - off);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      perror("client: write");
      exit(1);
    }
    off += (size_t)r;
  }
}

static int connect_leader(int port) {
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; i < 200; i++) {  // up to 10 s while the chain starts
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (connect(s, (struct sockaddr *)&a, sizeof a) == 0) {
      setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      return s;
    }
    close(s);
    usleep(50000);
  }
  perror("client: connect");
  exit(1);
}

int main(int argc, char **argv) {
  int open_loop = argc >= 7 && !strcmp(argv[2], "open");
  if (argc < 7 || !(open_loop || !strcmp(argv[2], "closed"))) {
    fprintf(stderr, "usage: client PORT open RATE|closed INFLIGHT WARMUP_S MEASURE_S PID...\n");
    return 2;
  }
  prctl(PR_SET_TIMERSLACK, 1);  // wake up on time for the next arrival
  ticks_per_s = (double)sysconf(_SC_CLK_TCK);
  double load = atof(argv[3]), warmup = atof(argv[4]), measure = atof(argv[5]);
  for (int i = 6; i < argc && n_pids < MAX_PIDS; i++) server_pids[n_pids++] = atoi(argv[i]);
  sent_at = malloc(sizeof(double) * MAX_REQUESTS);
  double *latencies = malloc(sizeof(double) * MAX_REQUESTS);
  if (!sent_at || !latencies) return 1;
  conn = connect_leader(atoi(argv[1]));
  srand48(getpid());

  double t0 = now(), window_start = t0 + warmup, window_end = window_start + measure, next_arrival = t0;
  double last_progress = t0;
  struct sample before = {0}, after = {0};
  int measuring = 0, done_sending = 0;
  long n_latencies = 0, answered_in_window = 0;
  uint64_t n_answered = 0;
  char in[1 << 16];
  size_t have = 0;
  if (!open_loop)
    for (int i = 0; i < (int)load; i++) send_request(now());
  while (!done_sending || n_answered < n_sent) {
    double t = now();
    if (!measuring && t >= window_start) measuring = 1, before = take_sample();
    if (!done_sending && t >= window_end) done_sending = 1, after = take_sample();
    if (done_sending && t - last_progress > 10) {
      fprintf(stderr, "client: %llu answers missing after 10 s\n", (unsigned long long)(n_sent - n_answered));
      return 1;
    }
    if (open_loop && !done_sending)
      for (; next_arrival <= t; next_arrival += -log(1 - drand48()) / load) send_request(next_arrival);
    double wait = done_sending ? 0.1 : (open_loop ? next_arrival : window_end) - t;
    if (!measuring && window_start - t < wait) wait = window_start - t;
    if (wait < 0) wait = 0;
    struct timespec timeout = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
    struct pollfd p = {conn, POLLIN, 0};
    if (ppoll(&p, 1, &timeout, NULL) <= 0) continue;
    ssize_t r = read(conn, in + have, sizeof in - have);
    if (r <= 0) {
      fprintf(stderr, "client: the leader closed the connection\n");
      return 1;
    }
    have += (size_t)r;
    double t_answer = now();
    last_progress = t_answer;
    size_t off = 0;
    for (; have - off >= ANSWER; off += ANSWER) {
      uint64_t id;
      memcpy(&id, in + off + 4, 8);
      if (id >= n_sent || sent_at[id] < 0) {
        fprintf(stderr, "client: answer for request %llu, which is not outstanding\n", (unsigned long long)id);
        return 1;
      }
      double at = sent_at[id];
      sent_at[id] = -1;
      n_answered++;
      if (open_loop ? at >= window_start && at < window_end : t_answer >= window_start && t_answer < window_end) {
        latencies[n_latencies++] = t_answer - at;
        if (!open_loop) answered_in_window++;
      }
      if (!open_loop && !done_sending) send_request(now());
    }
    memmove(in, in + off, have - off);
    have -= off;
  }

  long completed = open_loop ? n_latencies : answered_in_window;
  if (completed == 0) {
    fprintf(stderr, "client: no request completed in the window\n");
    return 1;
  }
  qsort(latencies, (size_t)n_latencies, sizeof(double), cmp_double);
  double server = after.server_cpu - before.server_cpu, own = after.own_cpu - before.own_cpu;
  double other = (after.machine_busy - before.machine_busy) - server - own;
  printf("{\"loop\":\"%s\",\"load\":%g,\"sent\":%llu,\"answered\":%llu,\"completed\":%ld,\"ops_per_s\":%.0f,"
         "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"server_cpu_ms_per_op\":%.4f,\"server_switches_per_op\":%.2f,"
         "\"client_cpu_ms_per_op\":%.4f,\"other_cpu\":%.2f}\n",
         argv[2], load, (unsigned long long)n_sent, (unsigned long long)n_answered, completed, (double)completed / measure,
         latencies[n_latencies / 2] * 1e3, latencies[(long)((double)n_latencies * 0.99)] * 1e3, server * 1e3 / (double)completed,
         (double)(after.switches - before.switches) / (double)completed, own * 1e3 / (double)completed, other / measure);
  return 0;
}
