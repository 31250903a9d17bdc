// Errors that name the failing libbpf/syscall operation and its errno, plus a
// capture of libbpf's own log so verifier output reaches JavaScript instead of
// stderr (libbpf's EPERM hint about RLIMIT_MEMLOCK is misleading on new kernels).
#pragma once
#include <napi.h>
#include <stdexcept>
#include <string>

namespace kvstrace {

class BpfError : public std::runtime_error {
 public:
  BpfError(std::string op, int err, std::string detail = "");
  const std::string op;
  const int err;  // positive errno
  const std::string log;  // libbpf messages printed since the last LogScope began
};

// Throws BpfError when rc < 0 (libbpf returns -errno), else returns rc.
int check(const char* op, int rc);
[[noreturn]] void fail(const char* op, int err, const std::string& detail = "");

// Routes libbpf's print callback into a buffer; install once at module load.
void installLibbpfLog();
// Clears the captured log; errors thrown afterwards carry what was printed.
void beginLogScope();

Napi::Error toJsError(Napi::Env env, const BpfError& e);

}  // namespace kvstrace
