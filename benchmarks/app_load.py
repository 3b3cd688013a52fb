"""The served app under load: N users arriving together (issue 16).

    .venv/bin/python benchmarks/app_load.py --label before [--clients 20] [--app-root DIR]
    .venv/bin/python benchmarks/app_load.py --label two-procs --url http://127.0.0.1:8080 \\
        --pid PID1 --pid PID2      # servers started elsewhere (scripts/serve_multi.sh)

Loopback only, bounded in count (``--clients``) and time (``--timeout`` per client, the run
ends by then; ``--settle`` s of memory watching after). Without ``--url`` the script starts
``python -m scifm serve`` from ``--app-root`` (default: this checkout) on a free port and
stops it at the end. Steps:

1. alone: one client per page, one after another (warms the server; figures "alone");
2. burst: ``--clients`` processes (round robin over ``--pages``) start within ``--spread`` s;
   each is one user (``app_load_client.run_client``): page load = page GET sent until the
   session document is pulled over the websocket; click-to-result = widget change sent until
   the server patch carrying the result is applied; a rollout is timed the same way;
3. all along: a tiny static request (``/favicon.ico``) every 250 ms, a stall being one over
   1 s; the server's RSS (sum over ``--pid``) every 0.5 s: plateau = before the burst,
   peak, and ``--settle`` s after the last client closed; the load average beside each.

Merges the run under ``--label`` into ``benchmarks/results/app_load.json`` and rewrites
``app_load.md`` from all runs there. Targets (issue 16, 20 clients on 2 cores): page load
p95 <= 5 s; click-to-result p95 <= 1 s on /galaxies and /numbers; rollout p95 <= 5 s; no
stall over 1 s; peak RSS < 2 GB and back within 10 % of the plateau after ``--settle`` s.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import asdict
from pathlib import Path

import numpy as np

from scifm.core.report import repo_args, repo_path, run_info

sys.path.insert(0, str(Path(__file__).resolve().parent))
from app_load_client import load_model_types, run_client
from app_load_report import summarize, write_reports

ROOT = Path(__file__).resolve().parents[1]
PROBE_PATH, PROBE_EVERY_S, STALL_S = "/favicon.ico", 0.25, 1.0


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


class Sampler(threading.Thread):
    """Calls ``fn()`` every ``every`` s and keeps ``(time.time(), value)`` until stopped."""

    def __init__(self, fn, every: float) -> None:
        super().__init__(daemon=True)
        self.fn, self.every, self.samples, self.stop = fn, every, [], threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            t0 = time.time()
            self.samples.append((t0, self.fn()))
            self.stop.wait(max(0.0, self.every - (time.time() - t0)))


def probe(url: str):
    """Seconds a tiny static request takes (30 s cap: a refused or dead server counts 30)."""

    def once() -> float:
        t0 = time.perf_counter()
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                r.read()
        except OSError:
            return 30.0
        return time.perf_counter() - t0

    return once


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(app_root: Path, port: int) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=f"{app_root / 'lib'}:{app_root}")
    cmd = [sys.executable, "-m", "scifm", "serve", "--port", str(port)]
    log = open(ROOT / "runs" / f"app_load_server_{port}.log", "w")
    proc = subprocess.Popen(cmd, cwd=app_root, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}; see {log.name}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{PROBE_PATH}", timeout=5):
                return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"the server did not answer within 180 s; see {log.name}")


def _client_main(q, i: int, base: str, page: str, start_at: float, timeout: float) -> None:
    q.put((i, asdict(run_client(base, page, start_at, timeout))))


def run_clients(base: str, pages: list[str], spread: float, timeout: float) -> list[dict]:
    """One forked process per client; client i starts at t0 + i * spread / n."""
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    t0 = time.time() + 1.0
    procs = [
        ctx.Process(
            target=_client_main, args=(q, i, base, p, t0 + i * spread / len(pages), timeout)
        )
        for i, p in enumerate(pages)
    ]
    for p in procs:
        p.start()
    out: dict[int, dict] = {}
    deadline = t0 + spread + timeout + 15
    while len(out) < len(procs) and time.time() < deadline:
        try:
            i, res = q.get(timeout=1.0)
            out[i] = res
        except Exception:  # queue.Empty: keep waiting until the deadline
            pass
    for p in procs:
        p.join(timeout=1)
        if p.is_alive():
            p.kill()
    killed = {"error": "killed at the run deadline", "load_s": None, "actions": {}, "kinds": {}}
    starts = [t0 + i * spread / len(pages) for i in range(len(pages))]  # as planned
    return [out.get(i, dict(killed, page=p, started=starts[i])) for i, p in enumerate(pages)]


def _start_browsers(base: str, pages: list[str], n: int, start_at: float, timeout: float):
    """Chromium tabs (round robin over ``pages``) in a forked process; returns a waiter."""
    if n <= 0:
        return None
    from app_load_browser import run_browsers

    ctx = mp.get_context("fork")
    q = ctx.Queue()
    tabs = [pages[i % len(pages)] for i in range(n)]
    proc = ctx.Process(target=lambda: q.put(run_browsers(base, tabs, start_at, timeout)))
    proc.start()

    def wait() -> list[dict]:
        try:
            return q.get(timeout=timeout + 60)
        except Exception:  # queue.Empty: the browser process hung
            return [{"page": p, "error": "no answer from the browser process"} for p in tabs]
        finally:
            proc.join(5)
            if proc.is_alive():
                proc.kill()

    return wait


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--label", required=True, help="run name in the results, e.g. before")
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--pages", default="galaxies,numbers,physics", help="round robin")
    ap.add_argument("--spread", type=float, default=1.0, help="all clients start within (s)")
    ap.add_argument("--timeout", type=float, default=150.0, help="per client (s)")
    ap.add_argument("--settle", type=float, default=60.0, help="memory watch after (s)")
    ap.add_argument("--url", help="an already running server (or proxy); default: start one")
    ap.add_argument("--pid", type=int, action="append", default=[], help="server PIDs (RSS)")
    ap.add_argument("--app-root", type=Path, default=ROOT, help="checkout to serve from")
    ap.add_argument("--browsers", type=int, default=0, help="chromium tabs alongside (smoke)")
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--note", default="", help="free text stored with the run")
    args = ap.parse_args(argv)
    if args.clients < 1 or args.clients > 50:
        ap.error(f"--clients must be in 1..50, got {args.clients}")
    load_model_types()
    (ROOT / "runs").mkdir(exist_ok=True)
    server = None
    if args.url is None:
        port = _free_port()
        server = start_server(args.app_root.resolve(), port)
        args.url, args.pid = f"http://127.0.0.1:{port}", [server.pid]
    if not args.url.startswith(("http://127.0.0.1", "http://localhost")):
        ap.error(f"--url must be a loopback address, got {args.url}")
    try:
        run = measure(args)
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
    args.results.mkdir(parents=True, exist_ok=True)
    write_reports(args.results, args.label, run)
    print(json.dumps(run["summary"], indent=1))
    return 0


def measure(args) -> dict:
    base, pages = args.url.rstrip("/"), args.pages.split(",")
    mem = Sampler(lambda: rss_mb(args.pid), 0.5)
    stall = Sampler(probe(base + PROBE_PATH), PROBE_EVERY_S)
    loadavg = Sampler(lambda: os.getloadavg()[0], 5.0)
    for s in (mem, stall, loadavg):
        s.start()
    alone = [run_clients(base, [p], 0.0, args.timeout)[0] for p in pages]
    time.sleep(5)
    plateau = float(np.median([v for _, v in mem.samples[-10:]])) if args.pid else None
    mix = [pages[i % len(pages)] for i in range(args.clients)]
    t_burst = time.time()
    tabs = _start_browsers(base, pages, args.browsers, t_burst + 1.0, args.timeout)
    burst = run_clients(base, mix, args.spread, args.timeout)
    t_closed = time.time()
    browsers = tabs() if tabs else []
    time.sleep(args.settle)
    for s in (mem, stall, loadavg):
        s.stop.set()
        s.join()
    run = {
        "config": {k: (repo_path(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "run": run_info(note="2 cores shared with other work; load average recorded below"),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "command": " ".join(
            [f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith("SCIFM_")]
            + [Path(sys.executable).name, *repo_args(sys.argv)]
        ),
        "alone": alone,
        "browsers": browsers,
        "burst": burst,
        "t_burst": t_burst,
        "t_closed": t_closed,
        "plateau_mb": plateau,
        "rss": mem.samples,
        "stall": stall.samples,
        "loadavg": loadavg.samples,
    }
    run["summary"] = summarize(run, stall_s=STALL_S, settle_s=args.settle)
    return run


if __name__ == "__main__":
    sys.exit(main())
