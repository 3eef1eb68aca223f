#!/usr/bin/env python3
"""API write latency with a large account: 100,000 policies of which 10,000
are regexes.  Each write (create, edit, delete) is acknowledged only after it
is durable AND the engine has it, so its latency includes both.  Prints
percentiles; asserts nothing.  Usage: writes.py ALLOWD_BIN"""
import http.client, json, os, subprocess, sys, tempfile, time

def start(binary, data):
    r, w = os.pipe()
    proc = subprocess.Popen([binary, "--listen", "127.0.0.1:0", "--data-dir", data,
                             "--notify-fd", str(w), "--access-log", "false",
                             "--rate-limit", "0"], pass_fds=(w,),
                            stdout=subprocess.DEVNULL, stderr=open(os.path.join(data, "log"), "w"))
    os.close(w)
    port = int(os.read(r, 32).decode().strip())
    os.close(r)
    return proc, port

def main():
    binary = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="allowd-bench-")
    data = os.path.join(tmp, "d")
    os.mkdir(data)
    proc, port = start(binary, data)
    try:
        creds = json.load(open(os.path.join(data, "credentials.json")))
        acc, tok = creds["account_id"], creds["api_token"]
        base = f"/client/v4/accounts/{acc}/email-security/settings/allow_policies"
        hdr = {"Authorization": f"Bearer {tok}", "Content-Type": "application/json"}
        conn = http.client.HTTPConnection("127.0.0.1", port)

        def call(method, path, body=None):
            t0 = time.perf_counter()
            conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=hdr)
            resp = conn.getresponse()
            data = resp.read()
            dt = time.perf_counter() - t0
            if resp.status >= 300:
                raise SystemExit(f"{method} {path}: {resp.status} {data[:300]!r}")
            return json.loads(data), dt

        def pol(i):
            if i % 10 == 0:
                return {"pattern": f".*@(mail|mx){i}\\.example\\.org", "pattern_type": "EMAIL",
                        "is_regex": True, "is_trusted_sender": False, "is_acceptable_sender": True,
                        "is_exempt_recipient": False, "verify_sender": True}
            kind = i % 3
            if kind == 0:
                return {"pattern": f"user{i}@d{i % 5000}.example", "pattern_type": "EMAIL", "is_regex": False,
                        "is_trusted_sender": True, "is_acceptable_sender": False, "is_exempt_recipient": False,
                        "verify_sender": False}
            if kind == 1:
                return {"pattern": f"d{i}.example", "pattern_type": "DOMAIN", "is_regex": False,
                        "is_trusted_sender": False, "is_acceptable_sender": True, "is_exempt_recipient": False,
                        "verify_sender": True}
            return {"pattern": f"{101 + i % 20}.{(i // 20) % 256}.{(i // 5120) % 256}.{i % 251}",
                    "pattern_type": "IP", "is_regex": False, "is_trusted_sender": True,
                    "is_acceptable_sender": False, "is_exempt_recipient": False, "verify_sender": False}

        t0 = time.perf_counter()
        for b in range(100):
            call("POST", base + "/batch", {"deletes": [], "patches": [], "puts": [],
                                           "posts": [pol(b * 1000 + k) for k in range(1000)]})
        print(f"seeded 100,000 policies (10,000 regexes) in {time.perf_counter() - t0:.1f} s")

        lat = {"create": [], "edit": [], "delete": []}
        ids = []
        for i in range(200):
            r, dt = call("POST", base, pol(200000 + i))
            lat["create"].append(dt)
            ids.append(r["result"]["id"])
        for i, pid in enumerate(ids[:200]):
            _, dt = call("PATCH", f"{base}/{pid}", {"comments": f"edit {i}"})
            lat["edit"].append(dt)
        for pid in ids[:200]:
            _, dt = call("DELETE", f"{base}/{pid}")
            lat["delete"].append(dt)
        allv = sorted(lat["create"] + lat["edit"] + lat["delete"])
        def pct(v, q):
            v = sorted(v)
            return v[min(len(v) - 1, int(q * len(v)))] * 1000
        print(f"{'write':8} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
        for k, v in lat.items():
            print(f"{k:8} {len(v):5d} {pct(v, .5):8.2f} {pct(v, .99):8.2f} {max(v) * 1000:8.2f}")
        p99 = pct(allv, .99)
        print(f"{'all':8} {len(allv):5d} {pct(allv, .5):8.2f} {p99:8.2f} {max(allv) * 1000:8.2f}")
        print(f"target: p99 <= 100 ms including the engine update: {'PASS' if p99 <= 100 else 'MISS'}")
    finally:
        proc.terminate()
        proc.wait()
        # the store's writer reports its group commits when it stops
        for line in open(os.path.join(data, "log"), errors="replace"):
            if "store: writer:" in line:
                print(line.split("store: ", 1)[1].rstrip())
        subprocess.run(["rm", "-rf", tmp])

if __name__ == "__main__":
    main()
