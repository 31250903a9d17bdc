#include "attach.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <net/if_arp.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "../../ebpf/trace_abi.h"
#include "bpf_error.h"

namespace kvstrace {
namespace {

// libbpf 1.1 predates tcx; these are the kernel's BPF_TCX_INGRESS/EGRESS.
constexpr int kTcxIngress = 46;
constexpr int kTcxEgress = 47;

// Classic filters live at a fixed priority in a small block of handles, so a
// later run can find (and judge) them with bpf_tc_query alone.
constexpr uint32_t kPriority = 1;
constexpr uint32_t kHandleBase = 0x6b760000;  // "kv"
constexpr int kSlots = 16;
constexpr const char* kProgPrefix = "kvs_tr_";
constexpr const char* kCfgMapName = "kvs_trace_cfg";

const bpf_tc_attach_point kPoints[2] = {BPF_TC_INGRESS, BPF_TC_EGRESS};

bpf_tc_hook hookFor(int ifindex, bpf_tc_attach_point point) {
  bpf_tc_hook h;
  std::memset(&h, 0, sizeof h);
  h.sz = sizeof h;
  h.ifindex = ifindex;
  h.attach_point = point;
  return h;
}

bpf_tc_opts optsFor(uint32_t handle, int prog_fd = 0) {
  bpf_tc_opts o;
  std::memset(&o, 0, sizeof o);
  o.sz = sizeof o;
  o.handle = handle;
  o.priority = kPriority;
  o.prog_fd = prog_fd;
  return o;
}

struct Fd {
  int fd;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

// Judges a filter's program: ours if its name has our prefix; stale if the
// process recorded in its config map is gone (or is a different process now).
enum class Owner { Foreign, Alive, Dead, Unknown };

Owner judge(uint32_t prog_id) {
  Fd prog(bpf_prog_get_fd_by_id(prog_id));
  // Opening a program by id needs CAP_SYS_ADMIN; without it nothing can be judged.
  if (prog.fd < 0) return errno == EPERM ? Owner::Unknown : Owner::Foreign;
  uint32_t map_ids[16] = {};
  bpf_prog_info info;
  std::memset(&info, 0, sizeof info);
  info.nr_map_ids = 16;
  info.map_ids = reinterpret_cast<uint64_t>(map_ids);
  uint32_t len = sizeof info;
  if (bpf_obj_get_info_by_fd(prog.fd, &info, &len) != 0) return Owner::Foreign;
  if (std::strncmp(info.name, kProgPrefix, std::strlen(kProgPrefix)) != 0) return Owner::Foreign;
  uint32_t n = info.nr_map_ids < 16 ? info.nr_map_ids : 16;
  for (uint32_t i = 0; i < n; i++) {
    Fd map(bpf_map_get_fd_by_id(map_ids[i]));
    if (map.fd < 0) continue;
    bpf_map_info mi;
    std::memset(&mi, 0, sizeof mi);
    uint32_t mlen = sizeof mi;
    if (bpf_obj_get_info_by_fd(map.fd, &mi, &mlen) != 0) continue;
    if (std::strcmp(mi.name, kCfgMapName) != 0 || mi.value_size != sizeof(kvs_trace_cfg)) continue;
    uint32_t zero = 0;
    kvs_trace_cfg cfg;
    if (bpf_map_lookup_elem(map.fd, &zero, &cfg) != 0) continue;
    if (cfg.owner_pid == 0) return Owner::Dead;
    uint64_t start = processStartTime(static_cast<int>(cfg.owner_pid));
    return start != 0 && start == cfg.owner_start ? Owner::Alive : Owner::Dead;
  }
  return Owner::Dead;  // ours, but no readable owner: left by an unknown run
}

uint32_t attachClassicOne(int ifindex, bpf_tc_attach_point point, int prog_fd) {
  bpf_tc_hook hook = hookFor(ifindex, point);
  for (int slot = 0; slot < kSlots; slot++) {
    bpf_tc_opts opts = optsFor(kHandleBase + slot, prog_fd);
    int rc = bpf_tc_attach(&hook, &opts);
    if (rc == 0) return opts.handle;
    if (rc != -EEXIST) fail("bpf_tc_attach", -rc);
  }
  fail("bpf_tc_attach", EBUSY, "all tracer filter slots on this interface are in use");
}

bool anyOfOurSlotsUsed(int ifindex) {
  for (auto point : kPoints) {
    bpf_tc_hook hook = hookFor(ifindex, point);
    for (int slot = 0; slot < kSlots; slot++) {
      bpf_tc_opts q = optsFor(kHandleBase + slot);
      if (bpf_tc_query(&hook, &q) == 0) return true;
    }
  }
  return false;
}

void closeFd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

}  // namespace

Interface lookupInterface(const std::string& ifname) {
  Interface itf;
  itf.ifindex = static_cast<int>(if_nametoindex(ifname.c_str()));
  if (itf.ifindex == 0) fail("if_nametoindex", errno, ifname);
  // The link type decides where the IP header starts (SIOCGIFHWADDR is per netns, /sys may not be).
  Fd sock(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (sock.fd < 0) fail("socket", errno);
  ifreq req;
  std::memset(&req, 0, sizeof req);
  std::strncpy(req.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
  if (ioctl(sock.fd, SIOCGIFHWADDR, &req) != 0) fail("ioctl(SIOCGIFHWADDR)", errno, ifname);
  switch (req.ifr_hwaddr.sa_family) {
    case ARPHRD_ETHER:
    case ARPHRD_LOOPBACK:
      itf.l2_len = 14;
      break;
    case ARPHRD_NONE:  // tun, wireguard: packets start at the IP header
    case ARPHRD_IPGRE:
      itf.l2_len = 0;
      break;
    default:
      fail("attach", EOPNOTSUPP, ifname + ": link type " + std::to_string(req.ifr_hwaddr.sa_family));
  }
  return itf;
}

uint64_t processStartTime(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s;
  if (!f || !std::getline(f, s)) return 0;
  // comm (field 2) may contain spaces and parentheses: count fields after the last ')'.
  size_t close_paren = s.rfind(')');
  if (close_paren == std::string::npos) return 0;
  std::istringstream rest(s.substr(close_paren + 2));
  std::string field;
  for (int i = 3; i <= 22; i++) {
    if (!(rest >> field)) return 0;
  }
  return std::stoull(field);
}

StaleResult removeStaleFilters(int ifindex) {
  StaleResult r;
  for (auto point : kPoints) {
    bpf_tc_hook hook = hookFor(ifindex, point);
    for (int slot = 0; slot < kSlots; slot++) {
      bpf_tc_opts q = optsFor(kHandleBase + slot);
      if (bpf_tc_query(&hook, &q) != 0) continue;  // empty slot, or no clsact at all
      Owner o = judge(q.prog_id);
      if (o == Owner::Unknown) r.unverified++;
      if (o != Owner::Dead) continue;
      bpf_tc_opts d = optsFor(kHandleBase + slot);  // detach opts: handle and priority only
      if (bpf_tc_detach(&hook, &d) == 0) r.removed++;
    }
  }
  return r;
}

Attachment attachPrograms(int ifindex, int prog_in, int prog_eg, AttachMode mode) {
  Attachment a;
  a.ifindex = ifindex;
  const int progs[2] = {prog_in, prog_eg};
  if (mode != AttachMode::Classic) {
    const int types[2] = {kTcxIngress, kTcxEgress};
    int err = 0;
    for (int i = 0; i < 2 && err == 0; i++) {
      int fd = bpf_link_create(progs[i], ifindex, static_cast<bpf_attach_type>(types[i]), nullptr);
      if (fd < 0) err = -fd;
      else a.link_fd[i] = fd;
    }
    if (err == 0) {
      a.tcx = true;
      a.active = true;
      return a;
    }
    closeFd(a.link_fd[0]);
    closeFd(a.link_fd[1]);
    // Kernels before 6.6 reject the attach type with EINVAL: fall back to clsact.
    if (mode == AttachMode::Tcx || err != EINVAL) fail("bpf_link_create(tcx)", err);
  }

  bpf_tc_hook hook = hookFor(ifindex, BPF_TC_INGRESS);
  int rc = bpf_tc_hook_create(&hook);  // creates clsact, which has both points
  if (rc != 0 && rc != -EEXIST) fail("bpf_tc_hook_create", -rc);
  a.created_hook = rc == 0;
  a.active = true;
  try {
    for (int i = 0; i < 2; i++) a.handle[i] = attachClassicOne(ifindex, kPoints[i], progs[i]);
  } catch (...) {
    detachPrograms(a);
    throw;
  }
  return a;
}

void detachPrograms(Attachment& a) {
  if (!a.active) return;
  a.active = false;
  if (a.tcx) {
    closeFd(a.link_fd[0]);  // an unpinned tcx link detaches when its last fd closes
    closeFd(a.link_fd[1]);
    return;
  }
  for (int i = 0; i < 2; i++) {
    if (!a.handle[i]) continue;
    bpf_tc_hook hook = hookFor(a.ifindex, kPoints[i]);
    bpf_tc_opts d = optsFor(a.handle[i]);
    bpf_tc_detach(&hook, &d);
    a.handle[i] = 0;
  }
  // Remove the qdisc only if we made it and no other tracer still uses it;
  // filters of other tools cannot be listed through libbpf, which is why an
  // existing clsact is never removed.
  if (a.created_hook && !anyOfOurSlotsUsed(a.ifindex)) {
    bpf_tc_hook hook = hookFor(a.ifindex, static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS));
    bpf_tc_hook_destroy(&hook);
  }
  a.created_hook = false;
}

}  // namespace kvstrace
