"""What bench/snapshots.py prints: medians and spreads per server, the load, and the servers
side by side as a Markdown table. Pure functions of the measurements."""

from __future__ import annotations

import statistics

MB = 1024 * 1024
TARGET_CREATE_SPEEDUP = 3.0
TARGET_RESTORE_SPEEDUP = 1.5
TARGET_RSS_MB = 150.0

# Every timed side, as the report names it.
LABELS = {
    "dbops_create": "dbops snapshot create",
    "pg_dump_gzip": "`pg_dump | gzip` (the guide's snapshot)",
    "pg_dump_z9": "`pg_dump -Fc -Z9` (the guide's manual backup)",
    "dbops_restore": "dbops snapshot restore, in place, no safety snapshot",
    "dbops_restore_safety": "dbops snapshot restore, in place, default (safety snapshot first)",
    "dbops_restore_newdb": "dbops snapshot restore, `restore_mode = \"new-database\"`",
    "gunzip_psql": "`gunzip -c | psql` (the guide's restore, into an empty database)",
}
SIZED = ("dbops_create", "pg_dump_gzip", "pg_dump_z9")
RSS = ("dbops_create", "dbops_restore", "dbops_restore_safety", "dbops_restore_newdb")


def summary(runs: list[dict]) -> dict:
    """Medians, spreads (min, max), sizes, the speedups against the guide's commands and the
    targets' verdicts of one server's runs."""
    def seconds(key: str) -> list[float]:
        return [run[key]["seconds"] for run in runs]

    median = {key: statistics.median(seconds(key)) for key in LABELS}
    sizes = {key: statistics.median(run[key]["size"] for run in runs) for key in SIZED}
    rss = max(run[key]["rss_mb"] for run in runs for key in RSS)
    create_speedup = median["pg_dump_z9"] / median["dbops_create"]
    restore_speedup = median["gunzip_psql"] / median["dbops_restore"]
    return {
        "runs": runs, "median_s": median, "spread_s": {key: [min(seconds(key)), max(seconds(key))] for key in LABELS},
        "sizes": sizes, "create_speedup": round(create_speedup, 3), "restore_speedup": round(restore_speedup, 3),
        "dbops_peak_rss_mb": rss,
        "targets_met": {"create": create_speedup >= TARGET_CREATE_SPEEDUP and sizes["dbops_create"] <= sizes["pg_dump_z9"],
                        "restore": restore_speedup >= TARGET_RESTORE_SPEEDUP, "memory": rss < TARGET_RSS_MB},
    }


def load(beds, before: tuple[float, float, float], after: tuple[float, float, float]) -> dict:
    """The load the figures were measured under: the CPU other processes used during the
    timed steps (in cores, out of ``os.cpu_count()``) and the load average around the run."""
    others = sorted(record["others_cores"] for bed in beds for run in bed.runs
                    for key, record in run.items() if key != "run")
    return {"others_cores_median": statistics.median(others) if others else None,
            "others_cores_max": max(others, default=None), "steps": len(others),
            "loadavg_before": [round(x, 2) for x in before], "loadavg_after": [round(x, 2) for x in after]}


def print_server(name: str, info: dict, runs: list[dict]) -> None:
    """One server's figures as plain text, with the targets' verdicts."""
    median, sizes, spread = info["median_s"], info["sizes"], info["spread_s"]

    print(f"\n[{name}] PostgreSQL {info['version']}, database {info['database_bytes'] / MB:,.1f} MB; "
          f"median (min–max) of {len(runs)}")
    for key, label in LABELS.items():
        size = f"{sizes[key] / MB:>9.1f} MB" if key in sizes else " " * 12
        runs_text = ", ".join(f"{run[key]['seconds']:.1f}" for run in runs)
        print(f"  {label.replace('`', ''):<68}{median[key]:>7.1f} s ({spread[key][0]:.1f}–{spread[key][1]:.1f})"
              f"{size}   runs {runs_text}")
    met = info["targets_met"]
    print(f"  create: {info['create_speedup']:.2f}x faster than pg_dump -Fc -Z9 (target >= {TARGET_CREATE_SPEEDUP}), "
          f"pg_dump | gzip took {median['pg_dump_gzip'] / median['dbops_create']:.2f}x its time; size "
          f"{sizes['dbops_create'] / sizes['pg_dump_z9']:.3f}x of -Z9's: {_met(met['create'])}")
    print(f"  restore: {info['restore_speedup']:.2f}x of gunzip | psql's speed (target >= {TARGET_RESTORE_SPEEDUP}); "
          f"new-database {median['gunzip_psql'] / median['dbops_restore_newdb']:.2f}x; with the safety snapshot "
          f"{median['gunzip_psql'] / median['dbops_restore_safety']:.2f}x: {_met(met['restore'])}")
    print(f"  memory: dbops peak RSS {info['dbops_peak_rss_mb']} MB (target < {TARGET_RSS_MB:.0f}): "
          f"{_met(met['memory'])}")
    for error in info.get("psql_errors") or []:
        print(f"  gunzip | psql printed (every run): {error}")


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def markdown(servers: dict[str, dict], load_info: dict, *, repeat: int) -> str:
    """The servers side by side: each side's median (min–max), then the first server's time
    against each other's, round by round (the runs of a round were measured next to each other)."""
    names = list(servers)
    first, others = names[0], names[1:]
    head = [f"{n}: PostgreSQL {servers[n]['version']}" for n in names]
    lines = [
        "| side (median of " + str(repeat) + ", min–max) | " + " | ".join(head) + " | "
        + " | ".join(f"{n} / {first}, per round" for n in others) + " |",
        "|---|" + "---:|" * len(names) + "---|" * len(others),
    ]
    for key, label in LABELS.items():
        cells = []
        for n in names:
            info = servers[n]
            low, high = info["spread_s"][key]
            size = f", {info['sizes'][key] / MB:.1f} MB" if key in SIZED else ""
            cells.append(f"{info['median_s'][key]:.2f} s ({low:.2f}–{high:.2f}){size}")
        lines.append(f"| {_cell(label)} | " + " | ".join(cells) + " | "
                     + " | ".join(_paired(servers[first]["runs"], servers[n]["runs"], key) for n in others) + " |")
    for label, guide, dbops in (("create: `pg_dump | gzip` time / dbops'", "pg_dump_gzip", "dbops_create"),
                                ("restore: `gunzip -c | psql` time / dbops' (in place, no safety snapshot)",
                                 "gunzip_psql", "dbops_restore"),
                                ("restore: `gunzip -c | psql` time / dbops' (new-database)", "gunzip_psql",
                                 "dbops_restore_newdb")):
        cells = [f"{servers[n]['median_s'][guide] / servers[n]['median_s'][dbops]:.2f}×" for n in names]
        lines.append(f"| {_cell(label)} | " + " | ".join(cells) + " |" + " |" * len(others))
    lines.append("")
    lines.append("Databases: " + "; ".join(
        f"{n} {servers[n]['database_bytes'] / MB:,.1f} MB (fingerprint {servers[n]['fingerprint'][:12]})"
        for n in names) + ". Load: other processes used a median of "
        f"{load_info['others_cores_median']:.2f} cores (max {load_info['others_cores_max']:.2f}) during the "
        f"{load_info['steps']} timed steps; load average {load_info['loadavg_before'][0]:.2f} before, "
        f"{load_info['loadavg_after'][0]:.2f} after.")
    return "\n".join(lines)


def _cell(text: str) -> str:
    """Markdown table cells end at every |, even inside backticks."""
    return text.replace("|", "\\|")


def _paired(base_runs: list[dict], runs: list[dict], key: str) -> str:
    """``runs``' time over ``base_runs``' in each round: median (min–max)."""
    ratios = [b[key]["seconds"] / a[key]["seconds"] for a, b in zip(base_runs, runs)]
    return f"{statistics.median(ratios):.2f}× ({min(ratios):.2f}–{max(ratios):.2f})"
