// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* TC classifier that copies TCP segments of a port range into a ring buffer.
 * It never changes a packet's fate: every path returns TC_ACT_UNSPEC, which is
 * also TCX_NEXT, so the same program works under tcx and classic clsact. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "trace_abi.h"

#define TC_ACT_UNSPEC (-1)
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define PROTO_TCP 6

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kvs_trace_cfg);
} kvs_trace_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TRACE_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} kvs_trace_cnt SEC(".maps");

/* Records are variable-sized; bpf_ringbuf_reserve wants a constant size, so
 * the record is built here and copied with bpf_ringbuf_output. */
struct kvs_trace_scratch {
	struct kvs_trace_rec hdr;
	__u8 data[TRACE_MAX_SNAP];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kvs_trace_scratch);
} kvs_trace_scr SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20); /* user space may resize before load */
} kvs_trace_rb SEC(".maps");

static __always_inline void count(__u32 key)
{
	__u64 *v = bpf_map_lookup_elem(&kvs_trace_cnt, &key);
	if (v)
		(*v)++; /* per-CPU: no other writer */
}

static __always_inline int in_range(__u16 p, const struct kvs_trace_cfg *c)
{
	return p >= c->port_lo && p <= c->port_hi;
}

static __always_inline int trace_skb(struct __sk_buff *skb, __u8 dir)
{
	__u32 zero = 0;
	struct kvs_trace_cfg *cfg = bpf_map_lookup_elem(&kvs_trace_cfg, &zero);
	if (!cfg || cfg->port_hi == 0 || !(cfg->dir_mask & (1u << dir)))
		return TC_ACT_UNSPEC;
	struct kvs_trace_scratch *s = bpf_map_lookup_elem(&kvs_trace_scr, &zero);
	if (!s)
		return TC_ACT_UNSPEC;

	__u32 l2 = cfg->l2_len & 0xff;
	__u32 iphlen, iplen;
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		__u8 ip[20];
		if (bpf_skb_load_bytes(skb, l2, ip, sizeof(ip)))
			return TC_ACT_UNSPEC;
		/* Fragments carry no usable TCP header; TCP avoids them anyway (DF). */
		if (ip[9] != PROTO_TCP || (((ip[6] << 8) | ip[7]) & 0x3fff))
			return TC_ACT_UNSPEC;
		iphlen = (ip[0] & 0xf) * 4;
		/* tot_len, not skb->len: ingress skbs may still carry Ethernet padding.
		 * 0 means a BIG TCP super-packet whose length only skb->len knows. */
		iplen = (ip[2] << 8) | ip[3];
		if (!iplen)
			iplen = skb->len - l2;
		__builtin_memset(s->hdr.saddr, 0, sizeof(s->hdr.saddr));
		__builtin_memset(s->hdr.daddr, 0, sizeof(s->hdr.daddr));
		__builtin_memcpy(s->hdr.saddr, &ip[12], 4);
		__builtin_memcpy(s->hdr.daddr, &ip[16], 4);
		s->hdr.family = 4;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		__u8 ip6[40];
		if (bpf_skb_load_bytes(skb, l2, ip6, sizeof(ip6)))
			return TC_ACT_UNSPEC;
		/* Extension headers are not walked: only TCP right after the fixed header. */
		if (ip6[6] != PROTO_TCP)
			return TC_ACT_UNSPEC;
		iphlen = 40;
		iplen = (ip6[4] << 8) | ip6[5];
		iplen = iplen ? iplen + 40 : skb->len - l2;
		__builtin_memcpy(s->hdr.saddr, &ip6[8], 16);
		__builtin_memcpy(s->hdr.daddr, &ip6[24], 16);
		s->hdr.family = 6;
	} else {
		return TC_ACT_UNSPEC;
	}

	__u32 l4 = l2 + iphlen;
	__u8 th[20];
	if (iphlen < 20 || bpf_skb_load_bytes(skb, l4, th, sizeof(th))) {
		count(TRACE_CNT_ERRORS);
		return TC_ACT_UNSPEC;
	}
	__u16 sport = (th[0] << 8) | th[1];
	__u16 dport = (th[2] << 8) | th[3];
	if (!in_range(sport, cfg) && !in_range(dport, cfg))
		return TC_ACT_UNSPEC;
	__u32 doff = (th[12] >> 4) * 4;
	if (doff < 20 || iplen < iphlen + doff) {
		count(TRACE_CNT_ERRORS);
		return TC_ACT_UNSPEC;
	}
	count(TRACE_CNT_MATCHED);

	__u32 payload = iplen - iphlen - doff;
	__u32 poff = l4 + doff;
	__u32 cap = payload;
	if (cap > cfg->snap_len)
		cap = cfg->snap_len;
	if (poff >= skb->len)
		cap = 0;
	else if (cap > skb->len - poff)
		cap = skb->len - poff;
	if (cap) {
		/* Lets the verifier prove 1 <= cap <= TRACE_MAX_SNAP. */
		cap = ((cap - 1) & (TRACE_MAX_SNAP - 1)) + 1;
		if (bpf_skb_load_bytes(skb, poff, s->data, cap)) {
			count(TRACE_CNT_ERRORS);
			cap = 0;
		}
	}

	s->hdr.ts_ns = bpf_ktime_get_ns();
	s->hdr.seq = ((__u32)th[4] << 24) | ((__u32)th[5] << 16) | ((__u32)th[6] << 8) | th[7];
	s->hdr.ack = ((__u32)th[8] << 24) | ((__u32)th[9] << 16) | ((__u32)th[10] << 8) | th[11];
	s->hdr.payload_len = payload;
	s->hdr.cap_len = cap;
	s->hdr.sport = sport;
	s->hdr.dport = dport;
	s->hdr.dir = dir;
	s->hdr.tcp_flags = th[13];
	s->hdr.version = TRACE_REC_VERSION;
	s->hdr.reserved = 0;

	/* Lazy wakeup: one wakeup per record costs more than the tracing itself.
	 * Wake the consumer only when this record takes the backlog across the
	 * threshold (not on every record above it: a consumer that is behind is
	 * awake already); below it the consumer's poll timeout picks records up. */
	__u32 size = sizeof(s->hdr) + cap;
	__u64 flags = 0;
	if (cfg->wakeup_bytes) {
		__u64 avail = bpf_ringbuf_query(&kvs_trace_rb, BPF_RB_AVAIL_DATA);
		flags = avail < cfg->wakeup_bytes && avail + size >= cfg->wakeup_bytes
				? BPF_RB_FORCE_WAKEUP
				: BPF_RB_NO_WAKEUP;
	}
	if (bpf_ringbuf_output(&kvs_trace_rb, s, size, flags))
		count(TRACE_CNT_DROPPED);
	else
		count(TRACE_CNT_EMITTED);
	return TC_ACT_UNSPEC;
}

SEC("tc")
int kvs_tr_ingress(struct __sk_buff *skb)
{
	return trace_skb(skb, TRACE_DIR_INGRESS);
}

SEC("tc")
int kvs_tr_egress(struct __sk_buff *skb)
{
	return trace_skb(skb, TRACE_DIR_EGRESS);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
