"""CPU and memory of task-sidecar's wait for readiness: the release binary's `report` against a metadata
stand-in, waiting on a readiness URL that answers 503 (or a health check that stays STARTING) for the
whole window at the default 250 ms poll; CPU (utime+stime from /proc/<pid>/stat) between 5 s and 65 s
after the start, VmRSS and VmHWM at the end; compared with the same binary when nothing signals readiness
(`report` reads /task once and goes to PutEvents, which is refused here: it then idles in its retries)."""
import http.server, json, os, sys, threading, time, subprocess, socket
if len(sys.argv) < 3:
    sys.exit("usage: ready_wait_usage.py TASK_SIDECAR_BINARY FIXTURES_DIR [WINDOW_SECONDS]")
BIN, FIX = sys.argv[1], sys.argv[2]
WINDOW = float(sys.argv[3]) if len(sys.argv) > 3 else 60.0
HZ = os.sysconf("SC_CLK_TCK")

def serve(handler_body):
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            status, body = handler_body(self.path)
            self.send_response(status); self.send_header("content-length", str(len(body))); self.end_headers()
            self.wfile.write(body)
        def log_message(self, *a): pass
    s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=s.serve_forever, daemon=True).start()
    return s, s.server_port

counts = {"task": 0, "ready": 0}
def fixture(name, edit=None):
    t = json.load(open(f"{FIX}/{name}"))
    if edit: edit(t)
    return json.dumps(t).encode()
bodies = {"plain": fixture("fargate-soci-with-sidecar.json"), "health": fixture("fargate-health-starting.json")}
which = {"body": bodies["plain"]}
def meta(path):
    if path.endswith("/task"):
        counts["task"] += 1; return 200, which["body"]
    return 404, b""
def ready(path):
    counts["ready"] += 1; return 503, b""
_, mport = serve(meta); _, rport = serve(ready)

def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / HZ
def mem(pid, key):
    return next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith(key))

def measure(name, body, extra):
    which["body"] = bodies[body]; counts.update(task=0, ready=0)
    env = dict(os.environ, AWS_ENDPOINT_URL="http://127.0.0.1:9", AWS_REGION="us-east-1",
               AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x")
    p = subprocess.Popen([BIN, "report", "--metadata-uri", f"http://127.0.0.1:{mport}/v4/x",
                          "--exclude-container", "task-sidecar", "--ready-wait", f"{WINDOW + 30}s", *extra],
                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(5); c0, n0 = cpu(p.pid), dict(counts)
    time.sleep(WINDOW); c1, n1 = cpu(p.pid), dict(counts)
    rss, hwm = mem(p.pid, "VmRSS:"), mem(p.pid, "VmHWM:")
    p.kill(); p.wait()
    looks = (n1["ready"] - n0["ready"]) + (n1["task"] - n0["task"])
    per_look = "%.3f ms" % ((c1 - c0) * 1000 / looks) if looks else "-"
    print(f"| {name} | {WINDOW:.0f} s | {looks} | {(c1 - c0) * 1000:.0f} ms | {per_look} | "
          f"{(c1 - c0) / WINDOW * 100:.3f} % | {rss / 1024:.1f} MiB | {hwm / 1024:.1f} MiB |", flush=True)

print("| task-sidecar report, waiting | window | looks | CPU in window | CPU per look | of one core | RSS | peak RSS |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
measure("no signal (baseline: PutEvents retries only)", "plain", [])
measure("readiness URL answering 503, 250 ms poll", "plain", ["--ready-url", f"http://127.0.0.1:{rport}/ready"])
measure("health check STARTING, 250 ms poll", "health", [])
