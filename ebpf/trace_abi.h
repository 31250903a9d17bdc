/* Layouts shared by ebpf/trace.bpf.c, native/ and src/trace/record.ts.
 * Changing a field here means changing record.ts too (and bumping TRACE_REC_VERSION). */
#ifndef KVS_TRACE_ABI_H
#define KVS_TRACE_ABI_H

/* Largest payload prefix a record can carry; a power of two so the verifier
 * can bound the copy with a mask. */
#define TRACE_MAX_SNAP 4096
#define TRACE_DEFAULT_SNAP 256
#define TRACE_REC_VERSION 1

#define TRACE_DIR_INGRESS 0
#define TRACE_DIR_EGRESS 1

/* One ring-buffer record: this 64-byte header, then cap_len payload bytes.
 * Integers are host byte order; addresses are network order (IPv4 in the
 * first 4 bytes, rest zero). */
struct kvs_trace_rec {
	__u64 ts_ns;       /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u32 seq;         /* TCP sequence number */
	__u32 ack;         /* TCP acknowledgment number */
	__u32 payload_len; /* full TCP payload length of the segment (GSO: of the super-segment) */
	__u16 cap_len;     /* payload bytes that follow (<= snap length) */
	__u16 sport;
	__u16 dport;
	__u8 family;       /* 4 or 6 */
	__u8 dir;          /* TRACE_DIR_* */
	__u8 tcp_flags;    /* byte 13 of the TCP header: FIN=1 SYN=2 RST=4 PSH=8 ACK=16 */
	__u8 version;      /* TRACE_REC_VERSION */
	__u16 reserved;
	__u8 saddr[16];
	__u8 daddr[16];
};

/* Written by user space into the single slot of the config array. */
struct kvs_trace_cfg {
	__u16 port_lo;      /* capture when sport or dport is in [port_lo, port_hi]; */
	__u16 port_hi;      /* port_hi == 0 captures nothing (the initial state) */
	__u32 snap_len;     /* payload bytes to copy, <= TRACE_MAX_SNAP */
	__u32 wakeup_bytes; /* wake the consumer only when this much is queued (0: every record) */
	__u32 dir_mask;     /* bit (1 << TRACE_DIR_*) set: capture that direction */
	__u32 l2_len;       /* bytes before the IP header: 14 on Ethernet and lo, 0 on L3 devices */
	__u32 owner_pid;    /* the loading process: lets a later run tell a stale tc filter */
	__u64 owner_start;  /* its start time (field 22 of /proc/<pid>/stat), guards pid reuse */
};

/* Keys of the per-CPU counter array (one __u64 each), summed by user space.
 * One key per counter rather than one struct: clang merges increments of
 * struct fields into pointer arithmetic that the verifier refuses to callers
 * without CAP_PERFMON (Spectre v1 hardening). */
enum kvs_trace_counter {
	TRACE_CNT_MATCHED, /* segments that passed the filter */
	TRACE_CNT_EMITTED, /* records written to the ring */
	TRACE_CNT_DROPPED, /* records lost because the ring was full */
	TRACE_CNT_ERRORS,  /* packets that could not be parsed */
	TRACE_CNT_MAX,
};

#endif
