#include "consumer.h"

#include <bpf/libbpf.h>
#include <linux/types.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include "../../ebpf/trace_abi.h"
#include "bpf_error.h"

namespace kvstrace {

// Returned from the sample callback to make libbpf stop consuming.
constexpr int kReceiverGone = -ECANCELED;

RingConsumer::RingConsumer(int map_fd) {
  rb_ = ring_buffer__new(map_fd, &RingConsumer::onSample, this, nullptr);
  if (!rb_) fail("ring_buffer__new", errno);
}

RingConsumer::~RingConsumer() { ring_buffer__free(rb_); }

int RingConsumer::onSample(void* ctx, void* data, size_t size) {
  auto* self = static_cast<RingConsumer*>(ctx);
  const auto* rec = static_cast<const kvs_trace_rec*>(data);
  if (size < sizeof(kvs_trace_rec) || size != sizeof(kvs_trace_rec) + rec->cap_len ||
      rec->version != TRACE_REC_VERSION) {
    self->malformed_++;
    return 0;
  }
  if (!self->batch_) self->batch_ = std::make_unique<Batch>();
  auto& bytes = self->batch_->bytes;
  const auto* p = static_cast<const uint8_t*>(data);
  bytes.insert(bytes.end(), p, p + size);
  self->batch_->records++;
  if (bytes.size() >= self->max_batch_bytes_ && !self->flush()) return kReceiverGone;
  return 0;
}

bool RingConsumer::flush() {
  if (!batch_ || batch_->records == 0) return !receiver_gone_;
  if (!receiver_gone_ && !(*deliver_)(std::move(batch_))) receiver_gone_ = true;
  batch_.reset();
  return !receiver_gone_;
}

void RingConsumer::run(const std::atomic<bool>& stop, int poll_ms, size_t max_batch_bytes, const Deliver& deliver) {
  deliver_ = &deliver;
  max_batch_bytes_ = max_batch_bytes;
  receiver_gone_ = false;
  while (!stop.load() && !receiver_gone_) {
    int rc = ring_buffer__poll(rb_, poll_ms);
    // poll only drains rings epoll reported; with lazy wakeup a backlog below
    // the threshold never is, so a timeout drains explicitly.
    if (rc == 0) rc = ring_buffer__consume(rb_);
    if (rc < 0 && rc != -EINTR && rc != kReceiverGone) fail("ring_buffer__poll", -rc);
    flush();
  }
  if (!receiver_gone_) {
    int rc = ring_buffer__consume(rb_);
    if (rc < 0 && rc != kReceiverGone) fail("ring_buffer__consume", -rc);
    flush();
  }
  deliver_ = nullptr;
}

}  // namespace kvstrace

// src/trace/record.ts reads these offsets; keep both in step.
static_assert(sizeof(kvs_trace_rec) == 64, "record header size");
static_assert(offsetof(kvs_trace_rec, seq) == 8 && offsetof(kvs_trace_rec, ack) == 12, "record layout");
static_assert(offsetof(kvs_trace_rec, payload_len) == 16 && offsetof(kvs_trace_rec, cap_len) == 20, "record layout");
static_assert(offsetof(kvs_trace_rec, sport) == 22 && offsetof(kvs_trace_rec, dport) == 24, "record layout");
static_assert(offsetof(kvs_trace_rec, family) == 26 && offsetof(kvs_trace_rec, dir) == 27, "record layout");
static_assert(offsetof(kvs_trace_rec, tcp_flags) == 28 && offsetof(kvs_trace_rec, version) == 29, "record layout");
static_assert(offsetof(kvs_trace_rec, saddr) == 32 && offsetof(kvs_trace_rec, daddr) == 48, "record layout");
