#!/usr/bin/env python3
"""Latency of scaling requests, one at a time over one keep-alive connection, each answered only
once its replica change is committed: Hoist's Alertmanager hook (each delivery a new alert, so
each applies) or Docker Swarm's service update (the Engine API over its unix socket).

  hook_latency.py hoist HOST:PORT TOKEN SERVICE N RUN   (RUN names the alerts: each run's are new)
  hook_latency.py swarm SOCKET SERVICE N

Prints one JSON object: n, p50_ms, p90_ms, p99_ms, max_ms, errors.
"""
import http.client, json, socket, sys, time


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost")
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def alert(service, direction, i, run):
    return {
        "version": "4", "groupKey": "{}:{alertname=\"Bench\"}", "status": "firing",
        "receiver": "hoist", "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
        "externalURL": "http://alertmanager.invalid", "truncatedAlerts": 0,
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "Bench", "hoist_service": service, "hoist_scale": direction},
            "annotations": {}, "startsAt": f"2026-12-04T10:00:{i // 1000:02d}.{i % 1000:03d}Z",
            "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": f"bench-{run}",
        }],
    }


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    kind = sys.argv[1]
    lat, errors = [], 0
    if kind == "hoist":
        addr, token, service, n, run = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6]
        host, port = addr.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
        conn.request("GET", f"/v1/services/{service}")
        first_up = json.loads(conn.getresponse().read())["spec"]["replicas"] == 1
        for i in range(n):
            up = (i % 2 == 0) == first_up
            body = json.dumps(alert(service, "up" if up else "down", i, run))
            t0 = time.perf_counter()
            conn.request("POST", "/v1/hooks/alertmanager", body, headers)
            r = conn.getresponse()
            data = r.read()
            lat.append((time.perf_counter() - t0) * 1000)
            d = json.loads(data) if r.status == 200 else {}
            decisions = d.get("decisions", [])
            if r.status != 200 or not decisions or not decisions[0]["applied"] \
                    or decisions[0]["decision"]["to"] == decisions[0]["decision"]["from"]:
                errors += 1
    else:
        sock, service, n = sys.argv[2], sys.argv[3], int(sys.argv[4])
        conn = UnixHTTPConnection(sock)
        for i in range(n):
            conn.request("GET", f"/v1.41/services/{service}")
            r = conn.getresponse()
            svc = json.loads(r.read())
            spec = svc["Spec"]
            spec["Mode"]["Replicated"]["Replicas"] = 2 if i % 2 == 0 else 1
            body = json.dumps(spec)
            t0 = time.perf_counter()
            conn.request("POST", f"/v1.41/services/{service}/update?version={svc['Version']['Index']}",
                         body, {"content-type": "application/json"})
            r = conn.getresponse()
            r.read()
            lat.append((time.perf_counter() - t0) * 1000)
            if r.status != 200:
                errors += 1
    print(json.dumps({
        "n": len(lat), "p50_ms": round(percentile(lat, 50), 2), "p90_ms": round(percentile(lat, 90), 2),
        "p99_ms": round(percentile(lat, 99), 2), "max_ms": round(max(lat), 2), "errors": errors,
    }))


main()
