// Drains the BPF ring buffer on the calling (worker) thread and hands records
// over in batches: one buffer of back-to-back records, each a kvs_trace_rec
// header followed by cap_len payload bytes.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

struct ring_buffer;

namespace kvstrace {

struct Batch {
  std::vector<uint8_t> bytes;
  uint32_t records = 0;
};

class RingConsumer {
 public:
  // Returns false when the receiver is gone; the loop then stops.
  using Deliver = std::function<bool(std::unique_ptr<Batch>)>;

  explicit RingConsumer(int ringbuf_map_fd);
  ~RingConsumer();
  RingConsumer(const RingConsumer&) = delete;
  RingConsumer& operator=(const RingConsumer&) = delete;

  // Polls until `stop` is set, then drains what is left (lazy wakeup leaves
  // records below the threshold unannounced) and returns. Throws BpfError.
  void run(const std::atomic<bool>& stop, int poll_ms, size_t max_batch_bytes, const Deliver& deliver);

  uint64_t malformed() const { return malformed_.load(); }

 private:
  static int onSample(void* ctx, void* data, size_t size);
  bool flush();

  ring_buffer* rb_ = nullptr;
  std::unique_ptr<Batch> batch_;
  size_t max_batch_bytes_ = 0;
  const Deliver* deliver_ = nullptr;
  bool receiver_gone_ = false;
  std::atomic<uint64_t> malformed_{0};
};

}  // namespace kvstrace
