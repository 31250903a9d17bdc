"""A third party's client: Python stubs generated from protos/kv.proto and protos/health.proto by
grpc_tools.protoc, run against a real group by test/doors/grpc-generated-client.test.ts. It only
observes: every call's answer (value, status code, details, trailing metadata) goes into one JSON
object on stdout, and the test asserts on it.

Usage: python3 grpc_generated_client.py GEN_DIR PHASE CONFIG_JSON
  PHASE main:      CONFIG {"leader": addr, "followers": [addr, addr]}, the whole group up
  PHASE noquorum:  CONFIG {"alone": addr}, the other two replicas stopped
"""
import json
import sys
import threading
import time

GEN_DIR, PHASE, CONFIG = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
sys.path.insert(0, GEN_DIR)

import grpc  # noqa: E402
import health_pb2  # noqa: E402
import health_pb2_grpc  # noqa: E402
import kv_pb2  # noqa: E402
import kv_pb2_grpc  # noqa: E402

out = {}


def status(fn):
    """The call's outcome as data: OK and its result, or the status code, details and trailers."""
    try:
        return {"code": "OK", "result": fn()}
    except grpc.RpcError as e:
        md = {k: (v.decode("latin1") if isinstance(v, bytes) else v) for k, v in (e.trailing_metadata() or ())}
        return {"code": e.code().name, "details": e.details(), "md": md}


def cas_result(r):
    return {"ok": r.ok, "current": r.current.decode("latin1") if r.HasField("current") else None}


def kv_stub(addr):
    return kv_pb2_grpc.KVStub(grpc.insecure_channel(addr))


def raw(addr, method):
    """A method that sends and returns bytes as they are: how a broken client would call it."""
    return grpc.insecure_channel(addr).unary_unary(f"/protos.KV/{method}")


def scan_keys(stub, **req):
    return [kv.key.decode("utf-8") for kv in stub.Scan(kv_pb2.ScanRequest(**req), timeout=30)]


def main():
    leader, followers = CONFIG["leader"], CONFIG["followers"]
    everyone = [leader] + followers
    stubs = {a: kv_stub(a) for a in everyone}
    f = stubs[followers[0]]
    ldr = stubs[leader]

    # Health: Check on every replica, Watch's first answer, unknown services.
    health = {}
    for a in everyone:
        h = health_pb2_grpc.HealthStub(grpc.insecure_channel(a))
        name = health_pb2.HealthCheckResponse.ServingStatus.Name
        health[a] = {
            "check": status(lambda: name(h.Check(health_pb2.HealthCheckRequest(service=""), timeout=10).status)),
            "check_kv": status(lambda: name(h.Check(health_pb2.HealthCheckRequest(service="protos.KV"), timeout=10).status)),
            "check_unknown": status(lambda: name(h.Check(health_pb2.HealthCheckRequest(service="nope"), timeout=10).status)),
        }
        w = h.Watch(health_pb2.HealthCheckRequest(service=""), timeout=10)
        health[a]["watch_first"] = name(next(w).status)
        w.cancel()
        w = h.Watch(health_pb2.HealthCheckRequest(service="nope"), timeout=10)
        health[a]["watch_unknown_first"] = name(next(w).status)
        w.cancel()
    out["health"] = health

    # Put through a follower, Get through every replica, Delete through the leader: string keys,
    # non-ASCII included.
    keys = ["plain", "ключ-ü-🔑", "日本語/キー", "tab\tand\nnewline", "\u0000nul-first"]
    strings = {}
    for k in keys:
        v = f"value of {k} ✓ €"
        put = status(lambda: f.Put(kv_pb2.PutRequest(key=k, value=v), timeout=10) and "put")
        gets = [status(lambda: stubs[a].Get(kv_pb2.GetRequest(key=k), timeout=10).value) for a in everyone]
        dele = status(lambda: ldr.Delete(kv_pb2.DeleteRequest(key=k), timeout=10) and "deleted")
        after = [status(lambda: stubs[a].Get(kv_pb2.GetRequest(key=k), timeout=10).value)["code"] for a in everyone]
        strings[k] = {"put": put["code"], "gets": gets, "expected": v, "delete": dele["code"], "after": after}
    out["strings"] = strings
    out["delete_missing"] = status(lambda: ldr.Delete(kv_pb2.DeleteRequest(key="never-was"), timeout=10) and "deleted")

    # Batch, then Scan: a large result (crosses the door's 1,000-pair pages), ranges, limits, empty.
    n = 3000
    for lo in range(0, n, 1000):
        ops = [kv_pb2.BatchOp(put=kv_pb2.KeyValue(key=b"big:%05d" % i, value=b"v%05d" % i + b"." * 500)) for i in range(lo, lo + 1000)]
        f.Batch(kv_pb2.BatchRequest(ops=ops), timeout=30)
    scans = {}
    pairs = list(f.Scan(kv_pb2.ScanRequest(start=b"big:", end=b"big;"), timeout=30))
    scans["all_count"] = len(pairs)
    scans["all_in_order"] = [p.key for p in pairs] == [b"big:%05d" % i for i in range(n)]
    scans["all_values_right"] = all(p.value == b"v%05d" % i + b"." * 500 for i, p in enumerate(pairs))
    scans["range"] = scan_keys(stubs[followers[1]], start=b"big:00100", end=b"big:00105")
    scans["limit"] = len(scan_keys(ldr, start=b"big:", end=b"big;", limit=1001))
    scans["empty_range"] = scan_keys(f, start=b"big:00100", end=b"big:00100")
    scans["no_such_range"] = scan_keys(f, start=b"zzz-none:", end=b"zzz-none;")
    scans["reversed"] = status(lambda: scan_keys(f, start=b"big:00200", end=b"big:00100"))
    scans["open_end"] = scan_keys(f, start=b"big:02998", limit=2)
    scans["stale_follower"] = len(scan_keys(f, start=b"big:", end=b"big;", stale=True))
    out["scan"] = scans

    # CompareAndSwap: create on a missing key, mismatch, match, expected on a missing key, delete.
    ck = b"cas:\xff\x00bin"
    cas = {}
    req = kv_pb2.CompareAndSwapRequest
    cas["create"] = status(lambda: cas_result(f.CompareAndSwap(req(key=ck, value=b"one"), timeout=10)))
    cas["create_again"] = status(lambda: cas_result(f.CompareAndSwap(req(key=ck, value=b"two"), timeout=10)))
    cas["mismatch"] = status(lambda: cas_result(ldr.CompareAndSwap(req(key=ck, expected=b"nope", value=b"two"), timeout=10)))
    cas["match"] = status(lambda: cas_result(ldr.CompareAndSwap(req(key=ck, expected=b"one", value=b"two"), timeout=10)))
    cas["empty_expected_mismatch"] = status(lambda: cas_result(f.CompareAndSwap(req(key=ck, expected=b"", value=b"x"), timeout=10)))
    cas["delete"] = status(lambda: cas_result(f.CompareAndSwap(req(key=ck, expected=b"two"), timeout=10)))
    cas["missing_expected"] = status(lambda: cas_result(f.CompareAndSwap(req(key=ck, expected=b"two", value=b"three"), timeout=10)))
    cas["empty_value"] = status(lambda: cas_result(f.CompareAndSwap(req(key=ck, value=b""), timeout=10)))
    cas["empty_value_scan"] = [(kv.key.decode("latin1"), kv.value.decode("latin1")) for kv in f.Scan(kv_pb2.ScanRequest(start=ck, limit=1), timeout=10)]
    out["cas"] = cas

    # Batch: puts and deletes at once; an op that is neither; too many ops.
    f.Put(kv_pb2.PutRequest(key="batch:gone", value="x"), timeout=10)
    ops = [
        kv_pb2.BatchOp(put=kv_pb2.KeyValue(key="batch:é".encode(), value=b"1")),
        kv_pb2.BatchOp(put=kv_pb2.KeyValue(key=b"batch:b", value=b"2")),
        kv_pb2.BatchOp(delete=b"batch:gone"),
    ]
    batch = {"apply": status(lambda: ldr.Batch(kv_pb2.BatchRequest(ops=ops), timeout=10) and "applied")}
    batch["after"] = [(kv.key.decode(), kv.value.decode()) for kv in f.Scan(kv_pb2.ScanRequest(start=b"batch:", end=b"batch;"), timeout=10)]
    batch["empty_op"] = status(lambda: f.Batch(kv_pb2.BatchRequest(ops=[kv_pb2.BatchOp()]), timeout=10) and "applied")
    many = [kv_pb2.BatchOp(delete=b"k")] * 10001
    batch["too_many"] = status(lambda: f.Batch(kv_pb2.BatchRequest(ops=many), timeout=10) and "applied")
    batch["empty"] = status(lambda: f.Batch(kv_pb2.BatchRequest(), timeout=10) and "applied")
    out["batch"] = batch

    # Status codes and trailing metadata.
    codes = {}
    codes["not_found"] = status(lambda: f.Get(kv_pb2.GetRequest(key="missing"), timeout=10).value)
    codes["empty_key"] = status(lambda: f.Put(kv_pb2.PutRequest(key="", value="v"), timeout=10) and "put")
    codes["value_too_large"] = status(lambda: f.Put(kv_pb2.PutRequest(key="big", value="x" * ((1 << 20) + 1)), timeout=10) and "put")
    codes["key_too_large"] = status(lambda: f.Put(kv_pb2.PutRequest(key="k" * 4027, value="v"), timeout=10) and "put")
    codes["message_too_large"] = status(lambda: f.Put(kv_pb2.PutRequest(key="huge", value="x" * (5 << 20)), timeout=10) and "put")
    codes["malformed_truncated"] = status(lambda: raw(followers[0], "Get")(b"\x0a\xff\xff\xff\x0f", timeout=10))
    codes["malformed_utf8"] = status(lambda: raw(followers[0], "Put")(b"\x0a\x02\xff\xfe\x12\x01v", timeout=10))
    codes["malformed_wiretype"] = status(lambda: raw(leader, "Scan")(b"\x1b", timeout=10))
    codes["unknown_fields_ok"] = status(lambda: raw(leader, "Delete")(b"\x0a\x01z\xa0\x06\x01", timeout=10).hex())
    ldr.CompareAndSwap(req(key=b"binval", value=b"\xff\xfe"), timeout=10)
    codes["not_utf8_value"] = status(lambda: f.Get(kv_pb2.GetRequest(key="binval"), timeout=10).value)
    codes["unimplemented"] = status(lambda: grpc.insecure_channel(leader).unary_unary("/protos.KV/Nope")(b"", timeout=10))
    out["codes"] = codes

    # Deadlines: one too short to meet, on a unary call and a Scan; one long enough.
    dl = {}
    dl["get_short"] = status(lambda: f.Get(kv_pb2.GetRequest(key="plain"), timeout=0.0005).value)
    dl["scan_short"] = status(lambda: len(list(f.Scan(kv_pb2.ScanRequest(start=b"big:"), timeout=0.002))))
    f.Put(kv_pb2.PutRequest(key="dl", value="ok"), timeout=10)
    dl["get_ok"] = status(lambda: f.Get(kv_pb2.GetRequest(key="dl"), timeout=5).value)
    out["deadlines"] = dl

    # Many concurrent calls on one channel: more than one connection's 100 streams at once.
    ch = grpc.insecure_channel(followers[1])
    one = kv_pb2_grpc.KVStub(ch)
    puts = [one.Put.future(kv_pb2.PutRequest(key=f"conc:{i:04d}", value=f"v{i}"), timeout=60) for i in range(400)]
    put_codes = [status(p.result)["code"] for p in puts]
    gets = [one.Get.future(kv_pb2.GetRequest(key=f"conc:{i:04d}"), timeout=60) for i in range(400)]
    got = [status(lambda g=g: g.result().value) for g in gets]
    results = [None] * 20

    def scan_into(i):
        results[i] = len(list(one.Scan(kv_pb2.ScanRequest(start=b"big:", end=b"big;"), timeout=60)))

    threads = [threading.Thread(target=scan_into, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out["concurrent"] = {
        "puts_ok": sum(c == "OK" for c in put_codes),
        "gets_right": sum(g["code"] == "OK" and g["result"] == f"v{i}" for i, g in enumerate(got)),
        "scans": results,
    }

    # Scans cancelled mid-stream: more of them on one channel than a connection's streams, so one
    # whose stream the server kept would leave later calls waiting.
    ch = grpc.insecure_channel(followers[0])
    one = kv_pb2_grpc.KVStub(ch)
    cancelled = {"read_before_cancel": [], "codes": set()}
    for i in range(150):
        it = one.Scan(kv_pb2.ScanRequest(start=b"big:", end=b"big;"), timeout=30)
        cancelled["read_before_cancel"].append(sum(1 for _, _ in zip(range(5 + i % 7), it)))
        it.cancel()
        try:
            for _ in it:
                pass
            cancelled["codes"].add("OK")
        except grpc.RpcError as e:
            cancelled["codes"].add(e.code().name)
    start = time.monotonic()
    cancelled["after"] = status(lambda: one.Get(kv_pb2.GetRequest(key="dl"), timeout=10).value)
    cancelled["after_s"] = time.monotonic() - start
    cancelled["read_before_cancel"] = sorted(set(cancelled["read_before_cancel"]))
    cancelled["codes"] = sorted(cancelled["codes"])
    out["cancel"] = cancelled


def noquorum():
    alone = CONFIG["alone"]
    s = kv_stub(alone)
    h = health_pb2_grpc.HealthStub(grpc.insecure_channel(alone))
    name = health_pb2.HealthCheckResponse.ServingStatus.Name
    out["health"] = status(lambda: name(h.Check(health_pb2.HealthCheckRequest(service=""), timeout=10).status))
    threads = []

    def timed(label, call):
        start = time.monotonic()
        result = status(call)
        result["seconds"] = round(time.monotonic() - start, 2)
        out[label] = result

    # With a deadline the door retries until just before it, then answers what it last heard.
    for label, call in [
        ("get", lambda: s.Get(kv_pb2.GetRequest(key="plain"), timeout=4).value),
        ("put", lambda: s.Put(kv_pb2.PutRequest(key="nq", value="v"), timeout=4) and "put"),
        ("scan", lambda: len(list(s.Scan(kv_pb2.ScanRequest(start=b"big:"), timeout=4)))),
        ("cas", lambda: cas_result(s.CompareAndSwap(kv_pb2.CompareAndSwapRequest(key=b"nq", value=b"v"), timeout=4))),
        ("get_no_deadline", lambda: s.Get(kv_pb2.GetRequest(key="plain")).value),
    ]:
        threads.append(threading.Thread(target=timed, args=(label, call)))
    # At once, each on its own: they wait on the same missing quorum.
    for t in threads:
        t.start()
    for t in threads:
        t.join()


{"main": main, "noquorum": noquorum}[PHASE]()
print(json.dumps(out, ensure_ascii=False))
