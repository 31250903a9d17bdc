// Attaching the two classifier programs to an interface: tcx links where the
// kernel has them (they die with the process), classic clsact filters otherwise
// (they outlive a crash, so every attach first removes filters whose owner died).
#pragma once
#include <cstdint>
#include <string>

namespace kvstrace {

enum class AttachMode { Auto, Tcx, Classic };

struct Interface {
  int ifindex = 0;
  uint32_t l2_len = 0;  // bytes before the IP header
};

// Resolves the name in the calling thread's network namespace.
Interface lookupInterface(const std::string& ifname);

struct Attachment {
  bool active = false;
  bool tcx = false;
  int ifindex = 0;
  int link_fd[2] = {-1, -1};      // tcx: [ingress, egress]
  uint32_t handle[2] = {0, 0};    // classic: filter handles, 0 = none
  bool created_hook = false;      // classic: we created the clsact qdisc
};

struct StaleResult {
  int removed = 0;     // filters of dead tracers taken off
  int unverified = 0;  // filters in our slots whose owner could not be checked (no CAP_SYS_ADMIN)
};

// Removes classic filters left on ifindex by tracers that died.
StaleResult removeStaleFilters(int ifindex);

Attachment attachPrograms(int ifindex, int prog_in, int prog_eg, AttachMode mode);

// Idempotent; safe from an atexit handler.
void detachPrograms(Attachment& a);

// Field 22 of /proc/<pid>/stat; 0 when the process does not exist.
uint64_t processStartTime(int pid);

}  // namespace kvstrace
