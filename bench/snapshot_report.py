"""What bench/snapshots.py prints: medians and spreads per server, the load, and the servers
side by side as Markdown tables. Pure functions of the measurements.

Wall times on a shared machine move with what else runs; CPU time (every process of the
step, the server's included) moves much less, so it is reported beside them."""

from __future__ import annotations

import os
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
    """Medians and spreads (min, max) of wall time, CPU time (all processes; the server's),
    sizes, the speedups against the guide's commands and the targets' verdicts of one
    server's runs. Sides a server did not run are left out."""
    keys = [key for key in LABELS if all(key in run for run in runs)]

    def values(key: str, what) -> list[float]:
        return [what(run[key]) for run in runs]

    def seconds(record: dict) -> float:
        return record["seconds"]

    def cpu(record: dict) -> float:
        return sum(record["cpu_s"].values())

    def server_cpu(record: dict) -> float:
        return record["cpu_s"].get("server", 0.0)

    median = {key: statistics.median(values(key, seconds)) for key in keys}
    sizes = {key: statistics.median(values(key, lambda r: r["size"])) for key in SIZED if key in keys}
    rss = max(run[key]["rss_mb"] for run in runs for key in RSS if key in keys)
    z9, create = median.get("pg_dump_z9"), median["dbops_create"]
    create_speedup = z9 / create if z9 else None
    restore_speedup = median["gunzip_psql"] / median["dbops_restore"]
    return {
        "runs": runs, "median_s": median,
        "spread_s": {key: [min(values(key, seconds)), max(values(key, seconds))] for key in keys},
        "cpu_s": {key: round(statistics.median(values(key, cpu)), 2) for key in keys},
        "cpu_spread_s": {key: [round(min(values(key, cpu)), 2), round(max(values(key, cpu)), 2)] for key in keys},
        "server_cpu_s": {key: round(statistics.median(values(key, server_cpu)), 2) for key in keys},
        "sizes": sizes, "create_speedup": round(create_speedup, 3) if create_speedup else None,
        "restore_speedup": round(restore_speedup, 3), "dbops_peak_rss_mb": rss,
        "targets_met": {"create": (create_speedup >= TARGET_CREATE_SPEEDUP and sizes["dbops_create"]
                                   <= sizes["pg_dump_z9"]) if create_speedup else None,
                        "restore": restore_speedup >= TARGET_RESTORE_SPEEDUP, "memory": rss < TARGET_RSS_MB},
    }


def load(beds, before: tuple[float, float, float], after: tuple[float, float, float]) -> dict:
    """The load the figures were measured under: the CPU other processes used during the
    timed steps (in cores, out of ``os.cpu_count()``) and the load average around the run."""
    others = sorted(record["others_cores"] for bed in beds for run in bed.runs
                    for key, record in run.items() if key != "run")
    return {"others_cores_median": statistics.median(others) if others else None,
            "others_cores_max": max(others, default=None), "others_cores_min": min(others, default=None),
            "steps": len(others), "loadavg_before": [round(x, 2) for x in before],
            "loadavg_after": [round(x, 2) for x in after]}


def print_server(name: str, info: dict, runs: list[dict]) -> None:
    """One server's figures as plain text, with the targets' verdicts."""
    median, sizes, spread = info["median_s"], info["sizes"], info["spread_s"]
    print(f"\n[{name}] PostgreSQL {info['version']}, database {info['database_bytes'] / MB:,.1f} MB; "
          f"median (min–max) of {len(runs)}; CPU of every process (the server's)")
    for key in median:
        size = f"{sizes[key] / MB:>9.1f} MB" if key in sizes else " " * 12
        runs_text = ", ".join(f"{run[key]['seconds']:.1f}" for run in runs)
        print(f"  {LABELS[key].replace('`', ''):<68}{median[key]:>7.1f} s ({spread[key][0]:.1f}–{spread[key][1]:.1f})"
              f"{size}  CPU {info['cpu_s'][key]:5.1f} s ({info['server_cpu_s'][key]:.1f})   runs {runs_text}")
    met = info["targets_met"]
    if info["create_speedup"]:
        print(f"  create: {info['create_speedup']:.2f}x faster than pg_dump -Fc -Z9 (target >= "
              f"{TARGET_CREATE_SPEEDUP}), size {sizes['dbops_create'] / sizes['pg_dump_z9']:.3f}x of its: "
              f"{_met(met['create'])}")
    print(f"  create: pg_dump | gzip took {median['pg_dump_gzip'] / median['dbops_create']:.2f}x dbops' time")
    safety = (f"; with the safety snapshot {median['gunzip_psql'] / median['dbops_restore_safety']:.2f}x"
              if "dbops_restore_safety" in median else "")
    print(f"  restore: {info['restore_speedup']:.2f}x of gunzip | psql's speed (target >= {TARGET_RESTORE_SPEEDUP}); "
          f"new-database {median['gunzip_psql'] / median['dbops_restore_newdb']:.2f}x{safety}: {_met(met['restore'])}")
    print(f"  memory: dbops peak RSS {info['dbops_peak_rss_mb']} MB (target < {TARGET_RSS_MB:.0f}): "
          f"{_met(met['memory'])}")
    for error in info.get("psql_errors") or []:
        print(f"  gunzip | psql printed (every run): {error}")


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def markdown(servers: dict[str, dict], load_info: dict, *, repeat: int) -> str:
    """The servers side by side: each side's wall time, median (min–max), and each other
    server's time over the first's, round by round (a round's runs were measured next to each
    other); then the CPU time of the same steps; then dbops against the guide on each server."""
    names = list(servers)
    first, others = names[0], names[1:]
    head = " | ".join(f"{n}: PostgreSQL {servers[n]['version']}" for n in names)
    keys = [key for key in LABELS if key in servers[first]["median_s"]]
    lines = [
        f"| wall time, median of {repeat} (min–max) | {head} | "
        + " | ".join(f"{n} / {first}, per round" for n in others) + " |",
        "|---|" + "---:|" * len(names) + "---|" * len(others),
    ]
    for key in keys:
        cells = []
        for n in names:
            info = servers[n]
            if key not in info["median_s"]:
                cells.append("—")
                continue
            low, high = info["spread_s"][key]
            size = f", {info['sizes'][key] / MB:.1f} MB" if key in SIZED else ""
            cells.append(f"{info['median_s'][key]:.2f} s ({low:.2f}–{high:.2f}){size}")
        lines.append(f"| {_cell(LABELS[key])} | " + " | ".join(cells) + " | "
                     + " | ".join(_paired(servers[first]["runs"], servers[n]["runs"], key) for n in others) + " |")
    lines += ["", f"| CPU time of every process, median of {repeat} (min–max); the server's | {head} | "
              + " | ".join(f"{n} / {first}, all (server)" for n in others) + " |",
              "|---|" + "---:|" * len(names) + "---:|" * len(others)]
    for key in keys:
        cells = [f"{servers[n]['cpu_s'][key]:.1f} s ({servers[n]['cpu_spread_s'][key][0]:.1f}–"
                 f"{servers[n]['cpu_spread_s'][key][1]:.1f}); {servers[n]['server_cpu_s'][key]:.1f} s"
                 if key in servers[n]["cpu_s"] else "—" for n in names]
        ratios = [f"{_ratio(servers[n]['cpu_s'], servers[first]['cpu_s'], key)} "
                  f"({_ratio(servers[n]['server_cpu_s'], servers[first]['server_cpu_s'], key)})" for n in others]
        lines.append(f"| {_cell(LABELS[key])} | " + " | ".join(cells + ratios) + " |")
    lines += ["", f"| dbops against the guide, median wall times | {head} |", "|---|" + "---:|" * len(names)]
    for label, guide, dbops in (("create: `pg_dump | gzip`'s time / dbops'", "pg_dump_gzip", "dbops_create"),
                                ("restore: `gunzip -c | psql`'s time / dbops' (in place, no safety snapshot)",
                                 "gunzip_psql", "dbops_restore"),
                                ("restore: `gunzip -c | psql`'s time / dbops' (new-database)", "gunzip_psql",
                                 "dbops_restore_newdb")):
        cells = [f"{servers[n]['median_s'][guide] / servers[n]['median_s'][dbops]:.2f}×" for n in names]
        lines.append(f"| {_cell(label)} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Databases: " + "; ".join(
        f"{n} {servers[n]['database_bytes'] / MB:,.1f} MB (fingerprint {servers[n]['fingerprint'][:12]})"
        for n in names) + ". Load: other processes used a median of "
        f"{load_info['others_cores_median']:.2f} cores ({load_info['others_cores_min']:.2f}–"
        f"{load_info['others_cores_max']:.2f}) of {os.cpu_count()} during the {load_info['steps']} timed steps; load "
        f"average {load_info['loadavg_before'][0]:.2f} before, {load_info['loadavg_after'][0]:.2f} after.")
    return "\n".join(lines)


def _cell(text: str) -> str:
    """Markdown table cells end at every |, even inside backticks."""
    return text.replace("|", "\\|")


def _ratio(values: dict, base: dict, key: str) -> str:
    return f"{values[key] / base[key]:.2f}×" if key in values and base.get(key) else "—"


def _paired(base_runs: list[dict], runs: list[dict], key: str) -> str:
    """``runs``' time over ``base_runs``' in each round: median (min–max)."""
    ratios = [b[key]["seconds"] / a[key]["seconds"] for a, b in zip(base_runs, runs) if key in a and key in b]
    if not ratios:
        return "—"
    return f"{statistics.median(ratios):.2f}× ({min(ratios):.2f}–{max(ratios):.2f})"
