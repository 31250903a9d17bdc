// N-API surface of the tracer: a Tracer object owns one loaded BPF object,
// its attachment to one interface and, while started, one worker thread that
// drains the ring buffer into a bounded ThreadSafeFunction queue (when JS falls
// behind, the worker blocks, the ring fills and the BPF side counts drops).
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <napi.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "../../ebpf/trace_abi.h"
#include "attach.h"
#include "bpf_error.h"
#include "consumer.h"

namespace kvstrace {
namespace {

class Tracer;

// Live tracers, so an exit path that skips Node's cleanup (process.exit) still
// removes classic filters; tcx links go away with the process by themselves.
std::mutex registry_mu;
std::set<Tracer*> registry;

uint32_t numberArg(const Napi::CallbackInfo& info, size_t i, const char* what, uint32_t lo, uint32_t hi) {
  if (info.Length() <= i || !info[i].IsNumber()) {
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a number");
  }
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= lo && v <= hi) || v != static_cast<uint32_t>(v)) {
    throw Napi::RangeError::New(info.Env(), std::string(what) + " must be an integer in [" + std::to_string(lo) +
                                                ", " + std::to_string(hi) + "]");
  }
  return static_cast<uint32_t>(v);
}

uint32_t optNumber(const Napi::Object& o, const char* key, uint32_t def, uint32_t lo, uint32_t hi) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return def;
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= lo && d <= hi) || d != static_cast<uint32_t>(d)) {
    throw Napi::RangeError::New(o.Env(), std::string(key) + " must be an integer in [" + std::to_string(lo) + ", " +
                                             std::to_string(hi) + "]");
  }
  return static_cast<uint32_t>(d);
}

Napi::Object optObject(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() > i && info[i].IsObject()) return info[i].As<Napi::Object>();
  return Napi::Object::New(info.Env());
}

class Tracer : public Napi::ObjectWrap<Tracer> {
  static void callJs(Napi::Env env, Napi::Function fn, Tracer* self, Batch* batch);
  using Tsfn = Napi::TypedThreadSafeFunction<Tracer, Batch, &Tracer::callJs>;

 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Tracer",
                       {
                           InstanceMethod<&Tracer::Open>("open"),
                           InstanceMethod<&Tracer::Attach>("attach"),
                           InstanceMethod<&Tracer::SetPorts>("setPorts"),
                           InstanceMethod<&Tracer::SetSnapLen>("setSnapLen"),
                           InstanceMethod<&Tracer::SetDirections>("setDirections"),
                           InstanceMethod<&Tracer::SetWakeupBytes>("setWakeupBytes"),
                           InstanceMethod<&Tracer::Start>("start"),
                           InstanceMethod<&Tracer::Stats>("stats"),
                           InstanceMethod<&Tracer::Stop>("stop"),
                           InstanceMethod<&Tracer::Detach>("detach"),
                       });
  }

  explicit Tracer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Tracer>(info) {
    std::lock_guard<std::mutex> g(registry_mu);
    registry.insert(this);
  }

  ~Tracer() override {
    {
      std::lock_guard<std::mutex> g(registry_mu);
      registry.erase(this);
    }
    // start() holds a reference, so this runs while started only at environment
    // teardown, after the function's own cleanup already woke the worker.
    stop_ = true;
    if (worker_.joinable()) worker_.join();
    releaseAll();
  }

  // From atexit: no JS, no joining; just take filters off the interface.
  void detachAtExit() {
    std::lock_guard<std::mutex> g(attach_mu_);
    detachPrograms(attachment_);
  }

 private:
  // open(objPath, {ringBytes}) — loads the object; nothing is attached yet.
  void Open(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (obj_) throw Napi::Error::New(env, "already open");
    if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "objPath must be a string");
    std::string path = info[0].As<Napi::String>();
    Napi::Object opts = optObject(info, 1);
    uint32_t ring = optNumber(opts, "ringBytes", 4u << 20, 4096, 1u << 30);
    if (ring & (ring - 1)) throw Napi::RangeError::New(env, "ringBytes must be a power of two");
    try {
      beginLogScope();
      bpf_object* obj = bpf_object__open_file(path.c_str(), nullptr);
      if (!obj) fail("bpf_object__open_file", errno, path);
      obj_ = obj;
      bpf_map* rb = findMap("kvs_trace_rb");
      check("bpf_map__set_max_entries", bpf_map__set_max_entries(rb, ring));
      ring_bytes_ = ring;
      check("bpf_object__load", bpf_object__load(obj_));
      cfg_fd_ = bpf_map__fd(findMap("kvs_trace_cfg"));
      cnt_fd_ = bpf_map__fd(findMap("kvs_trace_cnt"));
      prog_in_ = bpf_program__fd(findProg("kvs_tr_ingress"));
      prog_eg_ = bpf_program__fd(findProg("kvs_tr_egress"));
      cfg_.snap_len = TRACE_DEFAULT_SNAP;
      cfg_.wakeup_bytes = std::min<uint32_t>(64 * 1024, ring / 4);
      cfg_.dir_mask = (1u << TRACE_DIR_INGRESS) | (1u << TRACE_DIR_EGRESS);
      cfg_.owner_pid = static_cast<uint32_t>(getpid());
      cfg_.owner_start = processStartTime(getpid());
      writeCfg();
      consumer_ = std::make_unique<RingConsumer>(bpf_map__fd(rb));
    } catch (const BpfError& e) {
      releaseAll();
      throw toJsError(env, e);
    }
  }

  // attach(ifname, {mode: 'auto'|'tcx'|'classic'})
  //   → {mode, ifindex, staleRemoved, staleUnverified, ingressProgId, egressProgId}
  Napi::Value Attach(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    requireOpen(env);
    if (attachment_.active) throw Napi::Error::New(env, "already attached");
    if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "ifname must be a string");
    std::string ifname = info[0].As<Napi::String>();
    Napi::Value m = optObject(info, 1).Get("mode");
    AttachMode mode = AttachMode::Auto;
    if (m.IsString()) {
      std::string s = m.As<Napi::String>();
      if (s == "tcx") mode = AttachMode::Tcx;
      else if (s == "classic") mode = AttachMode::Classic;
      else if (s != "auto") throw Napi::RangeError::New(env, "mode must be 'auto', 'tcx' or 'classic'");
    }
    try {
      beginLogScope();
      Interface itf = lookupInterface(ifname);
      cfg_.l2_len = itf.l2_len;
      writeCfg();
      StaleResult stale = removeStaleFilters(itf.ifindex);
      std::lock_guard<std::mutex> g(attach_mu_);
      attachment_ = attachPrograms(itf.ifindex, prog_in_, prog_eg_, mode);
      Napi::Object r = Napi::Object::New(env);
      r.Set("mode", attachment_.tcx ? "tcx" : "classic");
      r.Set("ifindex", itf.ifindex);
      r.Set("staleRemoved", stale.removed);
      r.Set("staleUnverified", stale.unverified);
      r.Set("ingressProgId", progId(prog_in_));
      r.Set("egressProgId", progId(prog_eg_));
      return r;
    } catch (const BpfError& e) {
      throw toJsError(env, e);
    }
  }

  void SetPorts(const Napi::CallbackInfo& info) {
    requireOpen(info.Env());
    uint32_t lo = numberArg(info, 0, "lo", 1, 65535);
    uint32_t hi = numberArg(info, 1, "hi", lo, 65535);
    cfg_.port_lo = static_cast<uint16_t>(lo);
    cfg_.port_hi = static_cast<uint16_t>(hi);
    writeCfgJs(info.Env());
  }

  void SetSnapLen(const Napi::CallbackInfo& info) {
    requireOpen(info.Env());
    cfg_.snap_len = numberArg(info, 0, "snapLen", 0, TRACE_MAX_SNAP);
    writeCfgJs(info.Env());
  }

  // Bit 0: ingress, bit 1: egress. On lo one direction sees every packet once.
  void SetDirections(const Napi::CallbackInfo& info) {
    requireOpen(info.Env());
    cfg_.dir_mask = numberArg(info, 0, "directions", 1, 3);
    writeCfgJs(info.Env());
  }

  // A threshold the ring cannot reach would never wake the consumer early: clamp to half the ring.
  void SetWakeupBytes(const Napi::CallbackInfo& info) {
    requireOpen(info.Env());
    cfg_.wakeup_bytes = std::min(numberArg(info, 0, "wakeupBytes", 0, 1u << 30), ring_bytes_ / 2);
    writeCfgJs(info.Env());
  }

  // start(onBatch(buffer, records), {pollMs, maxBatchBytes, queueDepth})
  void Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    requireOpen(env);
    if (running_) throw Napi::Error::New(env, "already started");
    if (info.Length() < 1 || !info[0].IsFunction()) throw Napi::TypeError::New(env, "onBatch must be a function");
    Napi::Object opts = optObject(info, 1);
    int poll_ms = static_cast<int>(optNumber(opts, "pollMs", 10, 1, 10000));
    size_t max_batch = optNumber(opts, "maxBatchBytes", 256 * 1024, 4096, 64u << 20);
    uint32_t depth = optNumber(opts, "queueDepth", 16, 1, 4096);

    tsfn_ = Tsfn::New(env, info[0].As<Napi::Function>(), "kvs-trace", depth, 1, this,
                      [](Napi::Env fenv, void*, Tracer* self) { self->onWorkerDone(fenv); });
    Ref();  // keep this object alive until the worker's function is finalized
    running_ = true;
    stop_ = false;
    worker_error_.reset();
    worker_ = std::thread([this, poll_ms, max_batch] { workerMain(poll_ms, max_batch); });
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (obj_) readCounters();
    Napi::Object r = Napi::Object::New(env);
    r.Set("delivered", static_cast<double>(delivered_.load()));
    r.Set("batches", static_cast<double>(batches_.load()));
    r.Set("dropped", static_cast<double>(counters_[TRACE_CNT_DROPPED]));
    r.Set("matched", static_cast<double>(counters_[TRACE_CNT_MATCHED]));
    r.Set("emitted", static_cast<double>(counters_[TRACE_CNT_EMITTED]));
    r.Set("errors", static_cast<double>(counters_[TRACE_CNT_ERRORS]));
    r.Set("malformed", static_cast<double>(consumer_ ? consumer_->malformed() : malformed_final_));
    r.Set("running", running_);
    r.Set("attached", attachment_.active);
    if (attachment_.active) r.Set("mode", attachment_.tcx ? "tcx" : "classic");
    return r;
  }

  // stop() → Promise: resolves once every queued batch has been handed to JS.
  Napi::Value Stop(const Napi::CallbackInfo& info) {
    // The deferred is made here, in the call that returns it (one made in
    // start() and returned later came back stale).
    auto d = Napi::Promise::Deferred::New(info.Env());
    if (!running_) {
      d.Resolve(info.Env().Undefined());
      return d.Promise();
    }
    pending_stops_.push_back(d);
    requestStop();
    return d.Promise();
  }

  // detach() → Promise: stops, takes the programs off the interface, unloads.
  Napi::Value Detach(const Napi::CallbackInfo& info) {
    auto d = Napi::Promise::Deferred::New(info.Env());
    if (!running_) {
      finishDetach(info.Env(), d);
      return d.Promise();
    }
    pending_detaches_.push_back(d);
    requestStop();
    return d.Promise();
  }

  // --- worker side ---

  void workerMain(int poll_ms, size_t max_batch) {
    auto deliver = [this](std::unique_ptr<Batch> b) {
      Batch* raw = b.release();
      napi_status st = tsfn_.BlockingCall(raw);
      if (st != napi_ok) {
        delete raw;
        return false;  // napi_closing: the environment is going away
      }
      return true;
    };
    try {
      consumer_->run(stop_, poll_ms, max_batch, deliver);
    } catch (const BpfError& e) {
      std::lock_guard<std::mutex> g(error_mu_);
      worker_error_ = std::make_unique<BpfError>(e);
    }
    tsfn_.Release();
  }

  // Runs on the main thread after the worker released the function and the
  // queue drained (or the environment tore it down).
  void onWorkerDone(Napi::Env env) {
    stop_ = true;
    if (worker_.joinable()) worker_.join();
    running_ = false;
    std::unique_ptr<BpfError> err;
    {
      std::lock_guard<std::mutex> g(error_mu_);
      err = std::move(worker_error_);
    }
    auto stops = std::move(pending_stops_);
    auto detaches = std::move(pending_detaches_);
    pending_stops_.clear();
    pending_detaches_.clear();
    for (auto& d : stops) {
      if (err) d.Reject(toJsError(env, *err).Value());
      else d.Resolve(env.Undefined());
    }
    for (auto& d : detaches) finishDetach(env, d);
    Unref();
  }

  // --- helpers ---

  void requestStop() { stop_ = true; }

  void finishDetach(Napi::Env env, Napi::Promise::Deferred& d) {
    if (obj_) readCounters();
    releaseAll();
    d.Resolve(env.Undefined());
  }

  void releaseAll() {
    {
      std::lock_guard<std::mutex> g(attach_mu_);
      detachPrograms(attachment_);
    }
    if (consumer_) malformed_final_ = consumer_->malformed();
    consumer_.reset();
    if (obj_) bpf_object__close(obj_);
    obj_ = nullptr;
  }

  void requireOpen(Napi::Env env) {
    if (!obj_) throw Napi::Error::New(env, "not open");
  }

  bpf_map* findMap(const char* name) {
    bpf_map* m = bpf_object__find_map_by_name(obj_, name);
    if (!m) fail("bpf_object__find_map_by_name", ENOENT, name);
    return m;
  }

  bpf_program* findProg(const char* name) {
    bpf_program* p = bpf_object__find_program_by_name(obj_, name);
    if (!p) fail("bpf_object__find_program_by_name", ENOENT, name);
    return p;
  }

  static uint32_t progId(int fd) {
    bpf_prog_info pi;
    std::memset(&pi, 0, sizeof pi);
    uint32_t len = sizeof pi;
    return bpf_obj_get_info_by_fd(fd, &pi, &len) == 0 ? pi.id : 0;
  }

  void writeCfg() {
    uint32_t zero = 0;
    if (bpf_map_update_elem(cfg_fd_, &zero, &cfg_, BPF_ANY) != 0) fail("bpf_map_update_elem(cfg)", errno);
  }

  void writeCfgJs(Napi::Env env) {
    try {
      writeCfg();
    } catch (const BpfError& e) {
      throw toJsError(env, e);
    }
  }

  void readCounters() {
    static const int ncpu = libbpf_num_possible_cpus();
    if (ncpu <= 0) return;
    std::vector<uint64_t> per(static_cast<size_t>(ncpu));
    for (uint32_t key = 0; key < TRACE_CNT_MAX; key++) {
      if (bpf_map_lookup_elem(cnt_fd_, &key, per.data()) != 0) return;
      uint64_t sum = 0;
      for (uint64_t v : per) sum += v;
      counters_[key] = sum;
    }
  }

  bpf_object* obj_ = nullptr;
  int cfg_fd_ = -1, cnt_fd_ = -1, prog_in_ = -1, prog_eg_ = -1;
  kvs_trace_cfg cfg_{};
  uint32_t ring_bytes_ = 0;
  uint64_t counters_[TRACE_CNT_MAX] = {};
  std::mutex attach_mu_;
  Attachment attachment_;
  std::unique_ptr<RingConsumer> consumer_;
  uint64_t malformed_final_ = 0;

  Tsfn tsfn_;
  std::thread worker_;
  std::atomic<bool> stop_{false};
  bool running_ = false;
  std::atomic<uint64_t> delivered_{0}, batches_{0};
  std::mutex error_mu_;
  std::unique_ptr<BpfError> worker_error_;
  std::vector<Napi::Promise::Deferred> pending_stops_, pending_detaches_;
};

// On the main thread, once per batch; env is null when the queue is torn down.
void Tracer::callJs(Napi::Env env, Napi::Function fn, Tracer* self, Batch* batch) {
  if (env == nullptr) {
    delete batch;
    return;
  }
  uint32_t n = batch->records;
  self->delivered_ += n;
  self->batches_++;
  // Zero-copy: the Buffer owns the batch.
  auto buf = Napi::Buffer<uint8_t>::New(env, batch->bytes.data(), batch->bytes.size(),
                                        [](Napi::Env, uint8_t*, Batch* b) { delete b; }, batch);
  fn.Call({buf, Napi::Number::New(env, n)});
}

void detachAllAtExit() {
  std::lock_guard<std::mutex> g(registry_mu);
  for (Tracer* t : registry) t->detachAtExit();
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  static bool once = [] {
    installLibbpfLog();
    std::atexit(detachAllAtExit);
    return true;
  }();
  (void)once;
  exports.Set("Tracer", Tracer::Define(env));
  exports.Set("maxSnapLen", Napi::Number::New(env, TRACE_MAX_SNAP));
  exports.Set("recordHeaderBytes", Napi::Number::New(env, sizeof(kvs_trace_rec)));
  exports.Set("recordVersion", Napi::Number::New(env, TRACE_REC_VERSION));
  return exports;
}

}  // namespace kvstrace

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return kvstrace::Init(env, exports); }

NODE_API_MODULE(kvs_trace, InitModule)
