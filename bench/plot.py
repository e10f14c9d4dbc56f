#!/usr/bin/env python3
"""Draw shipbench cluster's plots from the data `shipbench cluster --plot DIR`
writes into DIR (results.jsonl, run-NNN-commit.csv, run-NNN-lag.csv,
run-NNN-steal.csv):

  commit_cdf.png        commit-latency CDF, a line per run, a panel per
                        transport, two panels a row (the runs differ by ack
                        policy, mode, size)
  lag_over_time.png     follower lag (mean and max per time slice) over the
                        measured window, a panel per transport, a line per run
                        and follower; grey bars: the host's steal time per
                        slice (the CPU that lost most), on the right axis
  throughput_size.png   committed records/s and MB/s against record size,
                        a line per transport (closed-loop runs)
  rounds.png            with --rounds: records/s and commit p99 per transport
                        and workload, a dot per round, the median marked and
                        the spread (min-max) drawn; the lag plot then shows
                        each transport's median round (by commit p99) only

Usage: bench/plot.py DIR [--title TEXT]. Needs python3-matplotlib."""
import csv
import json
import os
import sys

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    sys.exit("plot.py: needs matplotlib (Debian: apt-get install python3-matplotlib)")


def load_runs(d):
    runs = []
    with open(os.path.join(d, "results.jsonl")) as f:
        for i, line in enumerate(f, 1):
            line = line.strip()
            if line:
                r = json.loads(line)
                r["run"] = i
                r.setdefault("idle", "backoff")  # written before the key was
                runs.append(r)
    return runs


def read_csv(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return list(csv.DictReader(f))


def label(r, keys):
    parts = []
    for k in keys:
        v = r[k]
        if k == "acks":
            parts.append("acks=" + str(v))
        elif k == "record_bytes":
            parts.append("%d B" % v)
        elif k == "round":
            parts.append("r%d" % v)
        elif k == "mode":
            parts.append("open %d/s" % r["rate"] if v == "open" else "closed %d" % r["inflight"])
        else:
            parts.append(str(v))
    return " ".join(parts)


def varying(runs, keys):
    """The keys whose values differ between runs: what a label must show."""
    return [k for k in keys if len({json.dumps(r[k]) for r in runs}) > 1] or keys[:1]


WORK = ["acks", "ack_level", "mode", "record_bytes", "data", "idle"]


def work_key(r):
    """A workload: what a median over rounds groups by, besides the transport
    (an open loop's rate may differ by round under --half-max)."""
    return tuple(json.dumps(r[k]) for k in WORK) + (
        (r["inflight"],) if r["mode"] == "closed" else ())


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def median_rounds(runs):
    """With several rounds, each transport's and workload's run of median
    commit p99 (the lower middle one when even); else every run."""
    if len({r.get("round", 1) for r in runs}) < 2:
        return runs
    groups = {}
    for r in runs:
        groups.setdefault((r["transport"],) + work_key(r), []).append(r)
    keep = []
    for rs in groups.values():
        rs.sort(key=lambda r: r["commit_p99_us"])
        keep.append(rs[(len(rs) - 1) // 2])
    return sorted(keep, key=lambda r: r["run"])


def commit_cdf(d, runs, title):
    nets = sorted({r["transport"] for r in runs})
    ncol = min(2, len(nets))
    nrow = (len(nets) + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, ncol, figsize=(6.5 * ncol, 4.6 * nrow), squeeze=False)
    for ax in axes.flat[len(nets):]:
        ax.set_visible(False)
    keys = varying(runs, WORK + ["round"])
    for ax, net in zip(axes.flat, nets):
        for r in (r for r in runs if r["transport"] == net):
            pts = read_csv(os.path.join(d, "run-%03d-commit.csv" % r["run"]))
            if not pts:
                continue
            xs = [float(p["latency_us"]) for p in pts]
            ys = [float(p["quantile"]) for p in pts]
            ax.plot(xs, ys, label=label(r, keys), linewidth=1.4)
        ax.axvline(runs[0]["limit_fsync_p50_us"] + next(
            r["limit_rtt_p50_us"] for r in runs if r["transport"] == net),
            color="grey", linestyle=":", linewidth=1, label="fsync p50 + round trip p50")
        ax.set_xscale("log")
        ax.set_xlabel("commit latency (µs, log scale)")
        ax.set_ylabel("fraction of records committed within")
        ax.set_title("%s: commit latency CDF" % net)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    out = os.path.join(d, "commit_cdf.png")
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def lag_over_time(d, runs, title):
    runs = median_rounds(runs)
    nets = sorted({r["transport"] for r in runs})
    fig, axes = plt.subplots(len(nets), 1, figsize=(10, 3.2 * len(nets) + 0.8), squeeze=False,
                             sharex=True)
    keys = varying(runs, WORK)
    for ax, net in zip(axes[:, 0], nets):
        for r in (r for r in runs if r["transport"] == net):
            rows = read_csv(os.path.join(d, "run-%03d-lag.csv" % r["run"]))
            for f in sorted({row["follower"] for row in rows}):
                mine = [row for row in rows if row["follower"] == f]
                ts = [float(x["t_s"]) for x in mine]
                line, = ax.plot(ts, [float(x["mean_ms"]) for x in mine], linewidth=1.2,
                                label="%s, node %s" % (label(r, keys), f))
                ax.plot(ts, [float(x["max_ms"]) for x in mine], linewidth=0.6, alpha=0.5,
                        color=line.get_color(), linestyle="--")
            steal = [x for x in read_csv(os.path.join(d, "run-%03d-steal.csv" % r["run"]))
                     if float(x["steal_ms"]) > 0]
            if steal:
                if not hasattr(ax, "steal_ax"):
                    ax.steal_ax = ax.twinx()
                    ax.steal_ax.set_ylabel("host steal (ms per slice)", fontsize=8)
                ax.steal_ax.bar([float(x["t_s"]) for x in steal],
                                [float(x["steal_ms"]) for x in steal], width=0.01, zorder=0,
                                color="grey", alpha=0.4, align="edge")
        ax.set_yscale("log")
        ax.set_ylabel("lag (ms, log)")
        ax.set_title("%s: follower lag, leader seal -> delivery (solid: mean per slice, "
                     "dashed: max)" % net, fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6, ncol=2, loc="upper right")
    axes[-1, 0].set_xlabel("time into the measured window (s)")
    fig.suptitle(title)
    fig.tight_layout()
    out = os.path.join(d, "lag_over_time.png")
    fig.savefig(out, dpi=80)  # dense lines: a larger image adds bytes, not detail
    plt.close(fig)
    return out


def rounds_plot(d, runs, title):
    if len({r.get("round", 1) for r in runs}) < 2:
        return None
    works = []
    for r in runs:
        if work_key(r) not in [w for w, _ in works]:
            works.append((work_key(r), r))
    nets = []
    for r in runs:
        if r["transport"] not in nets:
            nets.append(r["transport"])
    fig, axes = plt.subplots(len(works), 2, figsize=(12, 3.6 * len(works) + 0.8), squeeze=False)
    keys = varying(runs, WORK)
    for row, (wk, first) in zip(axes, works):
        for ax, key, what in ((row[0], "records_per_s", "committed records/s"),
                              (row[1], "commit_p99_us", "commit p99 (µs, log)")):
            for x, net in enumerate(nets):
                ys = [r[key] for r in runs if r["transport"] == net and work_key(r) == wk]
                if not ys:
                    continue
                m = median(ys)
                ax.vlines(x, min(ys), max(ys), color="grey", linewidth=1)
                ax.scatter([x] * len(ys), ys, s=14, color="C%d" % x, alpha=0.6, zorder=2)
                ax.hlines(m, x - 0.25, x + 0.25, color="C%d" % x, linewidth=2.5, zorder=3)
                ax.annotate("%.0f" % m, (x + 0.28, m), fontsize=7, va="center")
            ax.set_xticks(range(len(nets)))
            ax.set_xticklabels(nets)
            ax.set_xlim(-0.5, len(nets) - 0.3)
            if key == "commit_p99_us":
                ax.set_yscale("log")
            ax.set_ylabel(what)
            ax.set_title("%s: median of %d rounds (bar), each round (dots)" % (
                label(first, keys), len({r.get("round", 1) for r in runs})), fontsize=9)
            ax.grid(True, which="both", axis="y", alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    out = os.path.join(d, "rounds.png")
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def throughput_size(d, runs, title):
    closed = [r for r in runs if r["mode"] == "closed"]
    if len({r["record_bytes"] for r in closed}) < 2:
        return None
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.8))
    groups = {}
    for r in closed:
        groups.setdefault((r["transport"], r["acks"], r["ack_level"], r["data"]), []).append(r)
    for (net, acks, level, data), rs in sorted(groups.items()):
        rs.sort(key=lambda r: r["record_bytes"])
        xs = [r["record_bytes"] for r in rs]
        lab = "%s acks=%s %s %s" % (net, acks, level, data)
        a1.plot(xs, [r["records_per_s"] for r in rs], marker="o", label=lab)
        a2.plot(xs, [r["mb_s"] for r in rs], marker="o", label=lab)
    for ax, what in ((a1, "committed records/s"), (a2, "committed MB/s of records")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("record size (bytes, log)")
        ax.set_ylabel(what)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    a1.set_title("throughput against record size (closed loop)")
    fig.suptitle(title)
    fig.tight_layout()
    out = os.path.join(d, "throughput_size.png")
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(argv) >= 2 else 2
    d = argv[1]
    title = argv[3] if len(argv) > 3 and argv[2] == "--title" else ""
    runs = load_runs(d)
    if not runs:
        sys.exit("plot.py: %s/results.jsonl holds no run" % d)
    if not title:
        r = runs[0]
        title = "shipbench cluster: %d nodes, load average %.1f at the first run" % (
            r["nodes"], r["load1"])
    for out in (commit_cdf(d, runs, title), lag_over_time(d, runs, title),
                throughput_size(d, runs, title), rounds_plot(d, runs, title)):
        if out:
            print("plot.py: wrote %s" % out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
