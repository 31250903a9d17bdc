#include "bpf_error.h"

#include <bpf/libbpf.h>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace kvstrace {
namespace {

std::mutex log_mu;
std::string log_buf;
constexpr size_t kMaxLog = 16 * 1024;  // verifier logs can be huge; keep the tail

int printFn(enum libbpf_print_level level, const char* fmt, va_list ap) {
  static const bool debug = std::getenv("KVS_TRACE_LIBBPF_DEBUG") != nullptr;
  if (debug) {
    va_list copy;
    va_copy(copy, ap);
    vfprintf(stderr, fmt, copy);
    va_end(copy);
  }
  if (level == LIBBPF_DEBUG) return 0;
  // One message can be a whole verifier log: size it first.
  va_list copy;
  va_copy(copy, ap);
  int n = vsnprintf(nullptr, 0, fmt, copy);
  va_end(copy);
  if (n <= 0) return n;
  std::string msg(static_cast<size_t>(n) + 1, '\0');
  vsnprintf(msg.data(), msg.size(), fmt, ap);
  msg.resize(static_cast<size_t>(n));
  std::lock_guard<std::mutex> g(log_mu);
  log_buf.append(msg);
  if (log_buf.size() > kMaxLog) log_buf.erase(0, log_buf.size() - kMaxLog);
  return n;
}

std::string takeLog() {
  std::lock_guard<std::mutex> g(log_mu);
  return log_buf;
}

std::string message(const std::string& op, int err, const std::string& detail) {
  std::string m = op + " failed: " + std::strerror(err) + " (errno " + std::to_string(err) + ")";
  if (!detail.empty()) m += ": " + detail;
  return m;
}

}  // namespace

BpfError::BpfError(std::string op_, int err_, std::string detail)
    : std::runtime_error(message(op_, err_, detail)), op(std::move(op_)), err(err_), log(takeLog()) {}

int check(const char* op, int rc) {
  if (rc < 0) fail(op, -rc);
  return rc;
}

void fail(const char* op, int err, const std::string& detail) { throw BpfError(op, err, detail); }

void installLibbpfLog() { libbpf_set_print(printFn); }

void beginLogScope() {
  std::lock_guard<std::mutex> g(log_mu);
  log_buf.clear();
}

Napi::Error toJsError(Napi::Env env, const BpfError& e) {
  Napi::Error err = Napi::Error::New(env, e.what());
  err.Set("op", Napi::String::New(env, e.op));
  err.Set("errno", Napi::Number::New(env, e.err));
  const char* name = strerrorname_np(e.err);
  if (name) err.Set("code", Napi::String::New(env, name));
  if (!e.log.empty()) err.Set("libbpfLog", Napi::String::New(env, e.log));
  return err;
}

}  // namespace kvstrace
