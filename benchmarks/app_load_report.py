"""Figures and targets of one ``app_load.py`` run, and the JSON + Markdown results of all runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from scifm.core.report import run_info, write_report

TARGETS = {  # name -> (description, limit); issue 16, 20 clients arriving together, 2 cores
    "page_load_p95_s": ("page load p95 (all pages)", 5.0),
    "click_p95_s_galaxies": ("click-to-result p95 /galaxies", 1.0),
    "click_p95_s_numbers": ("click-to-result p95 /numbers", 1.0),
    "rollout_p95_s": ("rollout p95 /physics", 5.0),
    "stall_max_s": ("slowest static request (stall)", 1.0),
    "peak_rss_mb": ("server peak RSS (MB)", 2048.0),
    "settle_ratio": ("RSS after settling / plateau", 1.10),
}

TITLE = "The app under load (benchmarks/app_load.py)"


def _stats(values: list, n_failed: int = 0) -> dict:
    """p50/p95/max of the successes; a failure counts as infinitely slow in the p95."""
    ok = [float(v) for v in values if v is not None]
    out = {"n": len(ok) + n_failed, "failed": n_failed}
    if not ok:
        return out | {"p50": None, "p95": None, "max": None}
    full = np.array(ok + [np.inf] * n_failed)
    p50, p95 = (float(np.percentile(full, q, method="higher")) for q in (50, 95))
    return out | {
        "p50": round(p50, 3) if np.isfinite(p50) else None,  # None: beyond the time limit
        "p95": round(p95, 3) if np.isfinite(p95) else None,
        "max": round(max(ok), 3),
    }


def _actions(clients: list[dict], kind: str, page: str | None = None) -> dict:
    vals, failed = [], 0
    for c in clients:
        if page is not None and c.get("page") != page:
            continue
        for name, t in (c.get("actions") or {}).items():
            if c["kinds"].get(name) == kind:
                vals.append(t)
                failed += t is None
    return _stats([v for v in vals if v is not None], failed)


def _loads(clients: list[dict], page: str | None = None) -> dict:
    sel = [c for c in clients if page is None or c.get("page") == page]
    return _stats([c["load_s"] for c in sel], sum(c.get("load_s") is None for c in sel))


def _browsers(tabs: list[dict]) -> dict:
    ok = [b["rendered_s"] for b in tabs if "rendered_s" in b and not b.get("errors")]
    return {"n": len(tabs), "rendered": len(ok), "max_s": max(ok, default=None)}


def summarize(run: dict, stall_s: float, settle_s: float) -> dict:
    burst, pages = run["burst"], sorted({c["page"] for c in run["alone"]})
    t0, t1 = run["t_burst"], run["t_closed"]
    probes = [v for t, v in run["stall"] if t0 <= t <= t1]
    idle = [v for t, v in run["stall"] if t >= t1 + 15]  # sessions gone: the machine's noise
    rss = [(t, v) for t, v in run["rss"]]
    after = [v for t, v in rss if t >= t1 + settle_s - 3]
    during = [v for t, v in run["loadavg"] if t0 <= t <= t1] or [None]
    starts = [c["started"] for c in burst if c.get("started")]
    s = {
        "clients": len(burst),
        "clients_started_within_s": round(max(starts) - min(starts), 3) if starts else None,
        "burst_s": round(t1 - t0, 1),
        "alone_page_load_s": {c["page"]: c["load_s"] and round(c["load_s"], 2)
                              for c in run["alone"]},
        "alone_actions_s": {c["page"]: {k: v and round(v, 2) for k, v in c["actions"].items()}
                            for c in run["alone"]},
        "page_load": {"all": _loads(burst)} | {p: _loads(burst, p) for p in pages},
        "click": {p: _actions(burst, "click", p) for p in ("galaxies", "numbers") if p in pages},
        "rollout": _actions(burst, "rollout"),
        "browsers": _browsers(run.get("browsers", [])),
        "busy_retries": sum(c.get("busy_retries", 0) for c in burst),
        "errors": sorted({c["error"] for c in burst if c.get("error")}),
        "n_errors": sum(bool(c.get("error")) for c in burst),
        "protocol_errors": (  # None: the run predates counting them
            sum(len(c["protocol_errors"]) for c in burst + run["alone"] if "protocol_errors" in c)
            if any("protocol_errors" in c for c in burst + run["alone"]) else None
        ),
        "stall": {"n": len(probes), "max_s": round(max(probes), 3) if probes else None,
                  "over_1s": sum(v > stall_s for v in probes),
                  "p95_s": round(float(np.percentile(probes, 95)), 3) if probes else None,
                  "idle_after_n": len(idle), "idle_after_max_s": max(idle, default=None),
                  "idle_after_over_1s": sum(v > stall_s for v in idle)},
        "memory_mb": {"plateau": run["plateau_mb"] and round(run["plateau_mb"]),
                      "peak": round(max(v for _, v in rss)) if rss else None,
                      "after_settle": round(float(np.median(after))) if after else None,
                      "settle_s": settle_s},
        "loadavg_1min": {"before": run["loadavg"][0][1] if run["loadavg"] else None,
                         "max_during": max((v for v in during if v is not None), default=None),
                         "after": run["loadavg"][-1][1] if run["loadavg"] else None},
    }  # fmt: skip
    s["targets"] = check_targets(s)
    return s


def check_targets(s: dict) -> dict:
    m = s["memory_mb"]
    ratio = m["after_settle"] / m["plateau"] if m["plateau"] and m["after_settle"] else None
    values = {
        "page_load_p95_s": s["page_load"]["all"]["p95"],
        "click_p95_s_galaxies": s["click"].get("galaxies", {}).get("p95"),
        "click_p95_s_numbers": s["click"].get("numbers", {}).get("p95"),
        "rollout_p95_s": s["rollout"]["p95"],
        "stall_max_s": s["stall"]["max_s"],
        "peak_rss_mb": m["peak"],
        "settle_ratio": None if ratio is None else round(ratio, 3),
    }
    stats = {
        "page_load_p95_s": s["page_load"]["all"],
        "click_p95_s_galaxies": s["click"].get("galaxies", {}),
        "click_p95_s_numbers": s["click"].get("numbers", {}),
        "rollout_p95_s": s["rollout"],
    }
    out = {}
    for name, (desc, limit) in TARGETS.items():
        v = values[name]
        met = v is not None and (v < limit if name == "peak_rss_mb" else v <= limit)
        out[name] = {"what": desc, "value": v, "limit": limit, "met": bool(met)}
        if name in stats:  # timed figures: how many never finished within the time limit
            out[name] |= {"n": stats[name].get("n", 0), "failed": stats[name].get("failed", 0)}
    return out


def _cell(t: dict) -> str:
    v = _fmt(t["value"])
    if t.get("failed"):
        v += f" ({t['failed']} of {t['n']} unfinished)"
    elif t.get("n") == 0:
        v += " (none reached)"
    return f"{v} {'met' if t['met'] else '**missed**'}"


def write_reports(out_dir: Path, label: str, run: dict) -> None:
    """Merge ``run`` into app_load.json (runs keyed by label) and rewrite app_load.md."""
    path = out_dir / "app_load.json"
    data = json.loads(path.read_text()) if path.exists() else {"runs": {}}
    for key in ("rss", "stall", "loadavg"):  # keep the series, rounded
        run[key] = [[round(t - run["t_burst"], 2), round(v, 3)] for t, v in run[key]]
    data["runs"][label] = run
    _write(out_dir, data, run.get("run"))


def _write(out_dir: Path, data: dict, info: dict | None) -> None:
    """app_load.{json,md} through scifm.core.report; the header is the latest run's record."""
    info = info or data.get("run") or run_info(note="summaries recomputed from stored runs")
    body = markdown(data).split("\n", 2)[2]  # write_report writes the title and the header
    write_report("app_load", data, body, info=info, title=TITLE, out_dir=out_dir)


def _fmt(v) -> str:
    return "n/a" if v is None else (f"{v:.3g}" if isinstance(v, float) else str(v))


def markdown(data: dict) -> str:
    runs = data["runs"]
    labels = list(runs)
    head = "| figure | target | " + " | ".join(labels) + " |\n|---|---|" + "---|" * len(labels)
    rows = []
    for name, (desc, limit) in TARGETS.items():
        cells = []
        for lb in labels:
            cells.append(_cell(runs[lb]["summary"]["targets"][name]))
        rows.append(f"| {desc} | {'<' if name == 'peak_rss_mb' else '<='} {limit:g} | "
                    + " | ".join(cells) + " |")  # fmt: skip
    extra = {
        "page load p50 (s)": lambda s: s["page_load"]["all"]["p50"],
        "one user alone: page load (s)": lambda s: ", ".join(
            f"{p} {_fmt(v)}" for p, v in s["alone_page_load_s"].items()),
        "one user alone: actions (s)": lambda s: ", ".join(
            f"{k} {_fmt(v)}" for a in s["alone_actions_s"].values() for k, v in a.items()),
        "failed clients": lambda s: s["n_errors"],
        "busy answers (retried)": lambda s: s["busy_retries"],
        "websocket messages the clients could not read": lambda s: s.get("protocol_errors"),
        "static requests over 1 s": lambda s: f"{s['stall']['over_1s']} of {s['stall']['n']}",
        "same, server idle after the run (machine noise)": lambda s: "{} of {} (max {})".format(
            s["stall"].get("idle_after_over_1s"), s["stall"].get("idle_after_n"),
            _fmt(s["stall"].get("idle_after_max_s"))),
        "RSS plateau / peak / after (MB)": lambda s: "{plateau} / {peak} / {after_settle}".format(
            **s["memory_mb"]),
        "chromium tabs rendered (slowest s)": lambda s: "{rendered} of {n} ({max_s})".format(
            **s.get("browsers", {"rendered": 0, "n": 0, "max_s": None})),
        "clients started within (s)": lambda s: s["clients_started_within_s"],
        "load average (1 min) before / max / after": lambda s: " / ".join(
            _fmt(s["loadavg_1min"][k]) for k in ("before", "max_during", "after")),
    }  # fmt: skip
    for name, fn in extra.items():
        rows.append(
            f"| {name} | | " + " | ".join(_fmt(fn(runs[lb]["summary"])) for lb in labels) + " |"
        )
    notes = [f"- **{lb}** ({runs[lb]['date']}): `{runs[lb]['command']}`"
             + (f" — {runs[lb]['config']['note']}" if runs[lb]["config"].get("note") else "")
             + "".join(f"\n  - error: {e}" for e in runs[lb]["summary"]["errors"])
             for lb in labels]  # fmt: skip
    return (
        f"# {TITLE}\n\n"
        "N clients (round robin over the pages) start within one second, each a real Bokeh\n"
        "session driven over the websocket; the machine (2 cores) is shared with other work,\n"
        "so the load average is recorded beside each run. Definitions: see the script.\n"
        "Main comparison: before / after (150 s per user), before-t400 / after-t400 (400 s per\n"
        "user, so that every user finishes); two-procs-threads4: two processes behind nginx;\n"
        "after-build-on-loop: after with page builds back on the event loop; others: earlier\n"
        "settings (see the notes).\n\n"
        + head
        + "\n"
        + "\n".join(rows)
        + "\n\nRuns:\n"
        + "\n".join(notes)
        + "\n"
    )


def resummarize(out_dir: Path) -> None:
    """Recompute every stored run's summary (stored series are relative to the burst)."""
    path = out_dir / "app_load.json"
    data = json.loads(path.read_text())
    for run in data["runs"].values():
        rel = dict(run, t_burst=0.0, t_closed=run["t_closed"] - run["t_burst"])
        run["summary"] = summarize(rel, stall_s=1.0, settle_s=run["config"]["settle"])
    _write(out_dir, data, None)


if __name__ == "__main__":
    import sys

    resummarize(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "results")
