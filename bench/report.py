"""Turns a benchmark result dict into ratios to simulatord, a markdown report and an SVG chart."""

from __future__ import annotations

from pathlib import Path

BASE = "simulatord"
# key, column title, higher-is-better; the order is the table's and the chart's.
METRICS = [
    ("rps_c1", "req/s c1", True),
    ("rps_c16", "req/s c16", True),
    ("p50_c1", "p50 c1 ms", False),
    ("p99_c1", "p99 c1 ms", False),
    ("p50_c16", "p50 c16 ms", False),
    ("p99_c16", "p99 c16 ms", False),
    ("cpu_c16", "server CPU us/req c16", False),
    ("cycle_ms", "cycle ms", False),
    ("startup_ms", "startup ms", False),
    ("rss_mb", "RSS MB", False),
]
SCALE_COLS = [(c, k) for c in ("c1", "c16") for k in ("rps", "p50_ms", "p99_ms")] + [("c16", "server_cpu_us_per_req")]
TITLES = {"rss_mb": "RSS MB after @N req"}


def metrics(res: dict, name: str) -> dict[str, float]:
    t = res["tools"].get(name, {})
    m: dict[str, float] = {}
    thr = t.get("throughput", {})
    for c in ("c1", "c16"):
        if c in thr:
            m[f"rps_{c}"] = thr[c]["rps"]
            m[f"p50_{c}"] = thr[c].get("p50_ms")
            m[f"p99_{c}"] = thr[c].get("p99_ms")
            m[f"cpu_{c}"] = thr[c].get("server_cpu_us_per_req")
    for key in ("cycle_ms", "cycle_client_ms", "cycle_embedded_ms", "startup_ms", "startup_embedded_ms"):
        if key in t:
            m[key] = t[key]["median"]
    if "rss" in t:
        m["rss_mb"] = t["rss"]["rss_after_mb"]
    return {k: v for k, v in m.items() if v is not None}


def ratios(res: dict) -> dict:
    """tool value / simulatord value, per metric (so for req/s above 1 means the peer is faster,
    for ms and MB above 1 means the peer is slower or bigger)."""
    base = metrics(res, BASE)
    out = {}
    for name in res["tools"]:
        if name == BASE:
            continue
        m = metrics(res, name)
        out[name] = {k: m[k] / base[k] for k in m if base.get(k)}
    return out


SIMULATORDS = (BASE, "simulatord-hypercorn")


def targets(res: dict) -> list[tuple[str, dict[str, str]]]:
    """The targets of the benchmark issue, checked per simulatord variant: (target, {variant: verdict})."""
    tools = res["tools"]
    wm, hs = metrics(res, "wiremock"), metrics(res, "pytest-httpserver")
    scale_rows = {(r["server"], r["case"]): r for r in res.get("scale", {}).get("rows", [])}
    out: list[tuple[str, dict[str, str]]] = []

    def check(label: str, fn) -> None:  # fn(name, metrics) -> (met, text) or None when not measured
        cells = {}
        for name in SIMULATORDS:
            if name in tools:
                got = fn(name, metrics(res, name))
                cells[name] = "not measured" if got is None else ("met: " if got[0] else "NOT met: ") + got[1]
        out.append((label, cells))

    def vs(key: str, peer: dict, limit: float, what: str):
        def fn(name: str, m: dict):
            if key not in m or key not in peer:
                return None
            return m[key] <= peer[key] * limit, f"{_fmt(m[key])} vs {what} {_fmt(peer[key])}"

        return fn

    def vs_cycle(key: str, peer: dict, limit: float, what: str):
        def fn(name: str, m: dict):
            if key not in m or "cycle_ms" not in peer:
                return None
            return m[key] <= peer["cycle_ms"] * limit, f"{_fmt(m[key])} vs {what} {_fmt(peer['cycle_ms'])}"

        return fn

    check(
        "per-test cycle, the plugin's embedded daemon (thread, in process) <= pytest-httpserver's",
        vs_cycle("cycle_embedded_ms", hs, 1.0, "pytest-httpserver"),
    )
    check(
        "per-test cycle, shared daemon through simulatord_client <= 1/2 of WireMock's",
        vs_cycle("cycle_client_ms", wm, 0.5, "WireMock"),
    )
    check(
        "per-test cycle, shared daemon, raw gRPC stubs <= 1/2 of WireMock's", vs_cycle("cycle_ms", wm, 0.5, "WireMock")
    )

    def below(key: str, limit: float):
        def fn(name: str, m: dict):
            return (m[key] < limit, f"{_fmt(m[key])} ms") if key in m else None

        return fn

    check(
        "start-up of the plugin's embedded daemon (thread) to the first answer < 250 ms",
        below("startup_embedded_ms", 250),
    )
    check("start-up of a daemon process (spawn to the first answer) < 250 ms", below("startup_ms", 250))
    check("p99 c16 below WireMock's", vs("p99_c16", wm, 1.0, "WireMock"))
    check(
        "req/s c16 at least WireMock's",
        lambda n, m: (
            (m["rps_c16"] >= wm["rps_c16"], f"{_fmt(m['rps_c16'])} vs WireMock {_fmt(wm['rps_c16'])}")
            if "rps_c16" in m and "rps_c16" in wm
            else None
        ),
    )

    def flat(name: str, m: dict):
        r = tools[name].get("rss")
        if not r:
            return None
        grew = r["rss_after_mb"] - r["rss_before_mb"]
        # Flat: the bounded journal and nothing else grows; 10,000 exchanges hold well under 64 MB.
        return grew <= 64, f"+{grew:.0f} MB after {_n(r['requests_served'])} requests"

    check("memory flat under sustained load (growth <= 64 MB)", flat)

    def scale(name: str, m: dict):
        stubs = res.get("scale", {}).get("stubs_per_session")
        one, many = scale_rows.get((name, "one-stub session")), scale_rows.get((name, f"{stubs}-stub session"))
        if not one or not many or "c16" not in one or "c16" not in many:
            return None
        ratio = many["c16"]["rps"] / one["c16"]["rps"]
        return ratio >= 0.9, f"{ratio:.2f}x of the one-stub req/s c16"

    check("1,000 sessions x 50 stubs within 10% of one stub", scale)
    return out


def _fmt(v: float) -> str:
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def _n(v: float) -> str:
    return f"{v / 1e6:.3g}M" if v >= 1e6 else f"{v / 1e3:.3g}k" if v >= 1e3 else f"{v:g}"


def markdown(res: dict) -> str:
    meta = res.get("meta", {})
    rat = res.get("ratios", {})
    names = [BASE] + [n for n in res["tools"] if n != BASE] if BASE in res["tools"] else list(res["tools"])
    lines = [
        f"## simulatord benchmark ({meta.get('mode', '?')} run, {meta.get('started', '?')}, "
        f"{meta.get('total_seconds', 0):.0f} s)",
        "",
        "Medians. Each peer cell shows `value (ratio)`, ratio = peer / simulatord: "
        "above 1 is better for the peer on req/s, worse on ms and MB.",
        "",
        "| server | " + " | ".join(t for _, t, _ in METRICS) + " |",
        "|---" * (len(METRICS) + 1) + "|",
    ]
    for name in names:
        m = metrics(res, name)
        cells = []
        for key, _, _ in METRICS:
            if key not in m:
                cells.append("n/a")
                continue
            cell = _fmt(m[key])
            if key == "rss_mb":
                cell += f" @{_n(res['tools'][name]['rss']['requests_served'])}"
            if name != BASE and key in rat.get(name, {}):
                cell += f" ({rat[name][key]:.2f}x)"
            cells.append(cell)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    for name in SIMULATORDS:
        sim = res["tools"].get(name, {})
        if "cycle_client_ms" in sim:
            lines.append(
                f"{name}'s cycle above is a shared daemon's through the generated gRPC stubs; through "
                f"`simulatord_client` (`with sim.session(stubs=[...]) as s`, heartbeat on) its median is "
                f"{_fmt(sim['cycle_client_ms']['median'])} ms"
                + (
                    f", and against the pytest plugin's embedded daemon (a thread of the test process, control "
                    f"calls in process) {_fmt(sim['cycle_embedded_ms']['median'])} ms"
                    if "cycle_embedded_ms" in sim
                    else ""
                )
                + (
                    f". The embedded daemon starts in {_fmt(sim['startup_embedded_ms']['median'])} ms "
                    "(to the first answer, in a test process)"
                    if "startup_embedded_ms" in sim
                    else ""
                )
                + "."
            )
            lines.append("")
    a = meta.get("args", {})
    lines.append(
        f"wrk -t1, {a.get('duration')} s per run, {a.get('reps')} interleaved reps; cycle = median of "
        f"{a.get('cycles')}; startup = median of {a.get('startup_reps')}; RSS = whole process tree "
        f"after `@N` requests (target {_n(a.get('rss_requests', 0))}, capped at "
        f"{a.get('rss_max_seconds')} s per tool) and {a.get('rss_idle')} s idle."
    )
    checks = targets(res)
    present = [n for n in SIMULATORDS if n in res["tools"]]
    if checks and present:  # a run of phases that fill no main-table figure (e.g. llm_webhooks alone) has none
        lines += ["", "### Targets", "", "| target | " + " | ".join(present) + " |", "|---" * (len(present) + 1) + "|"]
        lines += [f"| {label} | " + " | ".join(cells.get(n, "") for n in present) + " |" for label, cells in checks]
    sc = res.get("scale")
    if sc and sc.get("rows"):
        lines += [
            "",
            f"### Scale: {sc['sessions']} sessions x {sc['stubs_per_session']} stubs (target stub last in its session)",
            "",
            "| server | case | req/s c1 | p50 c1 ms | p99 c1 ms | req/s c16 | p50 c16 ms | p99 c16 ms"
            " | CPU us/req c16 |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name in (BASE, "simulatord-hypercorn", "wiremock"):
            if name in res["tools"] and "throughput" in res["tools"][name]:
                thr = res["tools"][name]["throughput"]
                lines.append(
                    f"| {name} | one stub, nothing else loaded (main table) | "
                    + " | ".join(_fmt(thr[c][k]) if c in thr and k in thr[c] else "n/a" for c, k in SCALE_COLS)
                    + " |"
                )
        for row in sc["rows"]:
            lines.append(
                f"| {row['server']} | {row['case']} | "
                + " | ".join(_fmt(row[c][k]) if c in row and k in row[c] else "n/a" for c, k in SCALE_COLS)
                + " |"
            )
        for name in (BASE, "simulatord-hypercorn", "wiremock"):
            if name in sc:
                s = sc[name]
                lines.append("")
                what = f"{sc['sessions']} sessions"
                if "mappings_loaded" in s:
                    what = f"{s['mappings_loaded']} mappings" + (" (import budget ran out)" if s["budget_hit"] else "")
                lines.append(
                    f"{name}: loading {what} took {s['create_seconds']:.1f} s; RSS afterwards {s['rss_mb']:.0f} MB."
                )
    ctl = res.get("control")
    if ctl:
        present = [n for n in SIMULATORDS if n in ctl]
        rpcs = list(ctl[present[0]])
        lines += [
            "",
            f"### Control-plane latency (median ms over {a.get('control_rounds')} rounds of a session's life)",
            "",
            "| RPC | " + " | ".join(f"{n} p50 | {n} p99" for n in present) + " |",
            "|---" * (2 * len(present) + 1) + "|",
        ]
        for rpc in rpcs:
            cells = []
            for n in present:
                st = ctl[n].get(rpc, {})
                cells += [f"{st['median']:.2f}", f"{st['p99']:.2f}"] if st else ["n/a", "n/a"]
            lines.append(f"| {rpc} | " + " | ".join(cells) + " |")
    w = res.get("watch")
    if w:
        s, v, r = w["send_to_watch_ms"], w["server_arrival_to_watch_ms"], w["response_to_watch_ms"]
        lines += [
            "",
            f"### Watch latency (simulatord, {w['requests']} sequential requests)",
            "",
            "| measured | p50 ms | p99 ms |",
            "|---|---|---|",
            f"| client sent request → WatchExchanges message received | {s['median']:.3f} | {s['p99']:.3f} |",
            f"| daemon receive_time → message received (same clock) | {v['median']:.3f} | {v['p99']:.3f} |",
            f"| client got HTTP response → message received | {r['median']:.3f} | {r['p99']:.3f} |",
            "",
            f"Messages later than 200 ms (stalled): {w['stalled_over_200ms']}; never delivered: "
            f"{w['never_delivered']}.",
        ]
    lw = res.get("llm_webhooks")
    if lw:
        lines += llm_webhooks_markdown(lw)
    if res.get("errors"):
        lines += ["", "### Errors", ""]
        for name, errs in res["errors"].items():
            for phase, msg in errs.items():
                lines.append(f"- {name} / {phase}: {msg.splitlines()[-1][:300]}")
    return "\n".join(lines)


def llm_webhooks_markdown(lw: dict) -> list[str]:
    """The llm_webhooks phase: each figure beside the same daemon's plain equivalent, and their ratio."""
    p = lw.get("params", {})
    present = [n for n in SIMULATORDS if n in lw]
    lines: list[str] = []
    llm_rows = [n for n in present if "llm" in lw[n]]
    if llm_rows:
        profiles = list(lw[llm_rows[0]]["llm"]["profiles"])
        lines += [
            "",
            f"### LLM simulation vs a plain stub serving the same bytes (median of {p.get('llm_reps')} interleaved "
            f"reps, wrk -c16 {p.get('llm_duration')} s; {p.get('llm_streams')} streams per rep)",
            "",
            "Each cell: simulated / plain stub on the same daemon (ratio; 1.00 = the simulation costs nothing).",
            "",
            "| server | " + " | ".join(profiles) + " |",
            "|---" * (len(profiles) + 1) + "|",
        ]
        for n in llm_rows:
            prof = lw[n]["llm"]["profiles"]
            cells = [
                f"{_fmt(prof[k]['simulated'])} / {_fmt(prof[k]['plain'])} ({prof[k]['ratio']:.2f}x)"
                if k in prof
                else "n/a"
                for k in profiles
            ]
            lines.append(f"| {n} | " + " | ".join(cells) + " |")
    wh_rows = [n for n in present if "webhooks" in lw[n]]
    if wh_rows:
        size = p.get("webhook_batch")
        lines += [
            "",
            f"### Webhooks: DeliverWebhooks (wait=true, GitHub-signed) to a loopback receiver "
            f"({p.get('webhook_rounds')} single deliveries, {p.get('webhook_batches')} calls of {size})",
            "",
            "One delivery = one gRPC call in, one HTTP request out to the receiver, its 200, the reply: its floor "
            "is the same daemon's Health.Check plus one GET of a plain stub, timed in the same rounds. A batch's "
            "deliveries go one after another, so its plain equivalent is sequential GETs (1000 / GET p50).",
            "",
            "| server | deliver 1: p50 ms | p99 ms | Health.Check p50 ms | plain GET p50 ms | p50 / (Health + GET) "
            f"| batch of {size}: deliveries/s | sequential GETs/s | ratio | bad signatures |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for n in wh_rows:
            w = lw[n]["webhooks"]
            b = w.get("batch", {})
            cells = [
                f"{w['deliver_one_ms']['median']:.2f}",
                f"{w['deliver_one_ms']['p99']:.2f}",
                f"{w['health_ms']['median']:.2f}",
                f"{w['plain_get_ms']['median']:.2f}",
                f"{w['deliver_one_p50_over_floor']:.2f}x",
                _fmt(b["deliveries_per_s"]) if b else "n/a",
                _fmt(b["plain_gets_per_s"]) if b else "n/a",
                f"{b['ratio_to_plain_gets']:.2f}x" if b else "n/a",
                f"{w['bad_signatures']} of {w['received']}",
            ]
            lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return lines


def chart(res: dict, path: Path) -> None:
    """One horizontal bar panel per metric, simulatord highlighted; SVG for the repo, PNG beside raw/."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Text as text and stable ids: a small SVG whose diffs between runs show real changes.
    matplotlib.rcParams["svg.fonttype"] = "none"
    matplotlib.rcParams["svg.hashsalt"] = "simulatord-bench"

    names = [BASE] + [n for n in res["tools"] if n != BASE] if BASE in res["tools"] else list(res["tools"])
    panels = [(k, t, hib) for k, t, hib in METRICS if k not in ("p50_c16", "p99_c1")]
    sc = res.get("scale", {}).get("rows")
    ncols = 4
    nrows = (len(panels) + (1 if sc else 0) + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 2.6 * nrows), squeeze=False)
    flat = [ax for row in axes for ax in row]
    colour = {BASE: "#d95f02", "simulatord-hypercorn": "#e6ab02"}  # both simulatord rows stand out
    other = "#7570b3"

    def bars(ax, labels: list[str], vals: list[float], colours: list[str], title: str, labelsize: int = 7) -> None:
        ax.barh(labels, vals, color=colours)
        for i, v in enumerate(vals):
            ax.text(v, i, " " + _fmt(v), va="center", fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.invert_yaxis()
        ax.tick_params(labelsize=labelsize)
        ax.margins(x=0.3)

    for ax, (key, title, hib) in zip(flat, panels, strict=False):
        vals = [(n, v) for n in names if (v := metrics(res, n).get(key)) is not None]
        better = "  (higher is better)" if hib else "  (lower is better)"
        bars(
            ax,
            [n for n, _ in vals],
            [v for _, v in vals],
            [colour.get(n, other) for n, _ in vals],
            TITLES.get(key, title) + better,
            labelsize=8,
        )
    used = len(panels)
    if sc:
        rows = [r for r in sc if "c16" in r]
        bars(
            flat[used],
            [f"{r['server']}: {r['case']}" for r in rows],
            [r["c16"]["rps"] for r in rows],
            [colour.get(r["server"], other) for r in rows],
            "scale: req/s c16 (higher is better)",
        )
        used += 1
    w = res.get("watch")
    if w and w.get("send_to_watch_ms"):
        s, v = w["send_to_watch_ms"], w["server_arrival_to_watch_ms"]
        bars(
            flat[used],
            ["send → watch p50", "send → watch p99", "receive_time → watch p50", "receive_time → watch p99"],
            [s["median"], s["p99"], v["median"], v["p99"]],
            [colour[BASE]] * 4,
            "simulatord watch latency ms (lower is better)",
        )
        used += 1
    for ax in flat[used:]:
        ax.axis("off")
    meta = res.get("meta", {})
    fig.suptitle(
        f"simulatord vs peers — {meta.get('mode', '?')} run {meta.get('started', '')}, "
        f"{meta.get('machine', {}).get('cores', '?')} cores, medians",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, format="svg", metadata={"Date": None})
    raw = path.parent / "raw"
    raw.mkdir(exist_ok=True)
    fig.savefig(raw / (path.stem + ".png"), dpi=80)
    plt.close(fig)
