"""Benchmark: `/migrate status` end-to-end latency through `dbops serve --http`, and the bot's
memory idle and during a `/snapshot create` of a >= 500 MB database (issue 10).

Not a test (pytest does not collect it): run it by hand, see bench/README.md.

    .venv/bin/python bench/status_and_memory.py [--size-mb 500] [--commands 100] [--json]

In one run it:

1. starts a throw-away embedded PostgreSQL 18 under /tmp, builds the realistic database of
   bench/snapshot_data.py (the snapshot bench's generator, at least ``--size-mb`` MB by
   ``pg_database_size``), and a small managed database brought to version 3 of the demo migrations with ``dbops migrate up 3``;
   the config has two environments: ``bench`` (the small one, channel C0BENCH) and ``big`` (the
   big one, channel C0BIG, no migrations), and a control database;
2. starts the fake Slack of the test suite and ``python -m bot.cli.main serve --http`` as a separate
   process, as bench/slack_ack.py does (its helpers are imported from it);
3. samples the bot's VmRSS every 50 ms (and VmHWM), with the RSS of its child processes
   (pg_dump, zstd, …) by program name, for the whole run;
4. ``/migrate status bench`` end to end: from just before the signed request is sent to the
   moment its answer arrives at the fake's response URL: ``--commands`` sequentially, then
   ``--commands`` at concurrency 10;
5. for comparison, ``dbops migrate status --env bench --config …`` as a process (wall time, 20
   runs) and ``psql -c 'SELECT version, dirty FROM schema_migrations'`` with the bundled psql
   (20 runs), which is what golang-migrate's ``migrate version`` reads;
6. the bot's memory idle (after the status runs), then ``/snapshot create big --reason bench``
   signed and sent, waiting for its progress message in C0BIG to be replaced by the result;
7. prints tables and verdicts against the targets (the bot under 200 MB, issue 4; the snapshot
   process under 150 MB, issue 3). Exit status 1 if a command failed or was not answered.
"""

from __future__ import annotations

import argparse
import atexit
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import psutil
import psycopg
import slack_ack as ack
import snapshot_data
from slack_ack import (
    MB,
    Arrivals,
    Sent,
    child_environ,
    free_port,
    percentile,
    proc_status,
    send,
    stop_bot,
)

from commands.pg import embedded
from commands.pg.tools import bundled_bin_dir
from tests.slack_fake import FakeSlack
from tests.slack_fake_requests import sign, slash_command_body

TARGET_BOT_MB = 200.0   # issue 4
TARGET_SNAPSHOT_MB = 150.0  # issue 3
CHANNEL, BIG_CHANNEL = "C0BENCH", "C0BIG"
USERS = ack.USERS


class TreeSampler(threading.Thread):
    """Every ``interval`` s: the root's VmRSS (with time), and the peak RSS of each descendant by
    program name (its VmHWM too, read while it lives)."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        super().__init__(name="rss-tree", daemon=True)
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, int]] = []
        self.children: dict[int, tuple[str, psutil.Process]] = {}
        self.child_peak: dict[str, int] = {}
        self.child_hwm: dict[str, int] = {}
        self.tree_samples: list[tuple[float, int]] = []  # the root plus every live descendant
        self._halt = threading.Event()
        self._root = psutil.Process(pid)

    def run(self) -> None:
        while not self._halt.is_set():
            now = time.monotonic()
            rss = proc_status(self.pid).get("VmRSS")
            if rss is not None:
                self.samples.append((now, rss))
            total = rss or 0
            try:
                for child in self._root.children(recursive=True):
                    if child.pid not in self.children:
                        try:
                            self.children[child.pid] = (child.name(), child)
                        except psutil.Error:
                            continue
            except psutil.Error:
                pass
            for pid, (name, _) in list(self.children.items()):
                status = proc_status(pid)
                if not status:
                    del self.children[pid]
                    continue
                child_rss = status.get("VmRSS", 0)
                total += child_rss
                self.child_peak[name] = max(self.child_peak.get(name, 0), child_rss)
                self.child_hwm[name] = max(self.child_hwm.get(name, 0), status.get("VmHWM", 0))
            self.tree_samples.append((now, total))
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def peak(self, since: float = 0.0, until: float = float("inf")) -> int:
        return max((r for t, r in self.samples if since <= t <= until), default=0)

    def tree_peak(self, since: float = 0.0, until: float = float("inf")) -> int:
        return max((r for t, r in self.tree_samples if since <= t <= until), default=0)


def write_config(path: Path, *, control_url: str, small_url: str, big_url: str, snapshot_dir: Path,
                 empty_migrations: Path) -> None:
    migrations = ROOT / "deploy" / "demo" / "migrations"
    path.write_text(f"""\
# Written by bench/status_and_memory.py
[control]
database_url = {json.dumps(control_url)}

[environments.bench]
database_url = {json.dumps(small_url)}
migrations_dir = {json.dumps(str(migrations))}
snapshot_dir = {json.dumps(str(snapshot_dir / "bench"))}
channels = [{json.dumps(CHANNEL)}]
operators = []
approvers = ["U0BENCHAPPROVER"]

[environments.big]
database_url = {json.dumps(big_url)}
migrations_dir = {json.dumps(str(empty_migrations))}
snapshot_dir = {json.dumps(str(snapshot_dir / "big"))}
channels = [{json.dumps(BIG_CHANNEL)}]
operators = []
approvers = ["U0BENCHAPPROVER"]
""")


def stats(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50": percentile(values, 50), "p90": percentile(values, 90),
            "p99": percentile(values, 99), "max": max(values)} if values else {"n": 0}


def timed_runs(argv: list[str], runs: int, env: dict[str, str]) -> tuple[list[float], list[str]]:
    times, problems = [], []
    for _ in range(runs):
        started = time.monotonic()
        done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        times.append((time.monotonic() - started) * 1000)
        if done.returncode != 0:
            problems.append(f"{argv[0]} … exited {done.returncode}: {(done.stdout + done.stderr)[-300:]}")
    return times, problems


def status_round(fake: FakeSlack, arrivals: Arrivals, port: int, secret: str, count: int,
                 concurrency: int, timeout: float = 60) -> tuple[list[float], list[str]]:
    """``count`` /migrate status bench, ``concurrency`` in flight; each one's send-to-answer ms."""
    users = list(USERS)
    items = []
    for i in range(count):
        user = users[i % len(users)]
        url = fake.response_url(channel=CHANNEL, user=user)
        items.append(Sent(index=i, kind="status", command="/migrate", text="status bench", user=user,
                          response_url=url, url_id=url.rsplit("/", 1)[1]))

    def one(item: Sent) -> Sent:
        send(item, port, secret, timeout=30)
        if item.status == 200 and not item.error:
            # Sequential semantics: the next command waits until this one's answer arrived.
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                with arrivals.lock:
                    got = arrivals.responses.get(item.url_id)
                    if got:
                        item.answered = got[0]
                        break
                time.sleep(0.001)
        return item

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        done = list(pool.map(one, items))
    problems = []
    for item in done:
        if item.error or item.status != 200:
            problems.append(f"status #{item.index}: {item.error or f'HTTP {item.status}'} {item.body[:200]!r}")
        elif item.answered is None:
            problems.append(f"status #{item.index}: no answer within {timeout:.0f} s")
        elif len(arrivals.responses.get(item.url_id, [])) > 1:
            problems.append(f"status #{item.index}: answered more than once")
    return [(i.answered - i.started) * 1000 for i in done if i.answered is not None], problems


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=500, help="the big database's size, at least (default 500)")
    parser.add_argument("--commands", type=int, default=100,
                        help="/migrate status per round, sequential and at concurrency 10 (default 100)")
    parser.add_argument("--runs", type=int, default=20, help="runs of the CLI and of psql (default 20)")
    parser.add_argument("--snapshot-timeout", type=float, default=900.0,
                        help="seconds to wait for the snapshot's result (default 900)")
    parser.add_argument("--json", action="store_true", help="also print the result as one JSON line")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    root = Path(tempfile.mkdtemp(prefix="dbops-bench-sm-", dir="/tmp"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    base_url = embedded.start(root / "data")
    control_url = embedded.ensure_database(base_url, "dbops_control")
    small_url = embedded.ensure_database(base_url, "bench_app")
    print(f"building database {snapshot_data.DATABASE} of at least {args.size_mb} MB …", flush=True)
    big_url = snapshot_data.build_database(base_url, args.size_mb * MB)
    big_size = snapshot_data.db_size(big_url)
    print(f"big database: {snapshot_data.human(big_size)}", flush=True)
    (root / "empty-migrations").mkdir()
    config = root / "dbops.toml"
    write_config(config, control_url=control_url, small_url=small_url, big_url=big_url,
                 snapshot_dir=root / "snapshots", empty_migrations=root / "empty-migrations")
    cli_env = child_environ(DBOPS_CONFIG=str(config))
    setup = subprocess.run([sys.executable, "-m", "bot.cli.main", "migrate", "up", "3", "--env", "bench"], cwd=ROOT,
                           env=cli_env, capture_output=True, text=True, check=False)
    if setup.returncode != 0:
        print(f"dbops migrate up 3 failed:\n{setup.stdout}{setup.stderr}", file=sys.stderr)
        return 1
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    os.sync()

    problems: list[str] = []
    result: dict = {"big_db_mb": round(big_size / MB, 1), "cpus": os.cpu_count()}

    # ---- the CLI and psql, before the bot starts (nothing else running) ----
    dbops = Path(sys.executable).parent / "dbops"
    cli_argv = ([str(dbops)] if dbops.exists() else [sys.executable, "-m", "bot.cli.main"]) + [
        "migrate", "status", "--env", "bench", "--config", str(config)]
    psql = str(bundled_bin_dir() / "psql")
    psql_argv = [psql, small_url, "-X", "-q", "-c", "SELECT version, dirty FROM schema_migrations"]
    print(f"CLI: {' '.join(cli_argv[:4])} … ({args.runs} runs)", flush=True)
    cli_ms, more = timed_runs(cli_argv, args.runs, cli_env)
    problems += more
    print(f"psql ({args.runs} runs)", flush=True)
    psql_ms, more = timed_runs(psql_argv, args.runs, {k: v for k, v in os.environ.items() if not k.startswith("PG")})
    problems += more

    bot_token, secret = "xoxb-bench-" + os.urandom(8).hex(), os.urandom(16).hex()
    port = free_port()
    with FakeSlack(bot_token=bot_token, users=dict(USERS), channels={CHANNEL: "bench", BIG_CHANNEL: "big"},
                   usergroups={}) as fake:
        arrivals = Arrivals()
        arrivals.install(fake)
        log_path = root / "bot.log"
        bot = ack.start_bot(config, fake, port=port, bot_token=bot_token, secret=secret, log_path=log_path)
        sampler = TreeSampler(bot.pid)
        sampler.start()
        crashed = None
        try:
            ack.wait_for_health(port, bot, deadline_s=60)
            time.sleep(1.0)
            rss_started = proc_status(bot.pid).get("VmRSS", 0)
            print(f"bot pid {bot.pid}: RSS after start {rss_started / MB:.1f} MB", flush=True)

            # Warm-up: one command, not measured (lazy imports, the first session).
            status_round(fake, arrivals, port, secret, 1, 1)
            seq_ms, more = status_round(fake, arrivals, port, secret, args.commands, 1)
            problems += more
            print(f"sequential: p50 {percentile(seq_ms, 50):.0f} ms", flush=True)
            conc_ms, more = status_round(fake, arrivals, port, secret, args.commands, 10)
            problems += more
            print(f"concurrency 10: p50 {percentile(conc_ms, 50):.0f} ms", flush=True)

            # ---- idle memory: 5 s with nothing to do, after the status rounds ----
            idle_from = time.monotonic()
            time.sleep(5.0)
            idle_to = time.monotonic()
            idle_now = proc_status(bot.pid)
            idle_peak = sampler.peak(idle_from, idle_to)
            idle_min = min((r for t, r in sampler.samples if idle_from <= t <= idle_to), default=0)

            # ---- /snapshot create big --reason bench ----
            user = next(iter(USERS))
            url = fake.response_url(channel=BIG_CHANNEL, user=user)
            item = Sent(index=0, kind="snapshot", command="/snapshot", text="create big --reason bench", user=user,
                        response_url=url, url_id=url.rsplit("/", 1)[1])
            posts_before = len(arrivals.posts)
            # slack_ack.send signs for its own channel; signed here for C0BIG, the same way.
            body = slash_command_body("/snapshot", item.text, user_id=user, user_name=USERS[user],
                                      channel_id=BIG_CHANNEL, channel_name="big", response_url=url)
            headers = sign(secret, body)
            snap_from = time.monotonic()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("POST", "/slack/events", body=body.encode(), headers=headers)
            answer = conn.getresponse()
            ack_body = answer.read()
            conn.close()
            snap_ack_ms = (time.monotonic() - snap_from) * 1000
            if answer.status != 200:
                problems.append(f"/snapshot create: HTTP {answer.status} {ack_body[:200]!r}")
            print(f"/snapshot create acknowledged in {snap_ack_ms:.0f} ms; waiting for the result …", flush=True)
            final_text, snap_done = None, None
            deadline = snap_from + args.snapshot_timeout
            while time.monotonic() < deadline and bot.poll() is None:
                with arrivals.lock:
                    posts = [p for p in arrivals.posts[posts_before:]]
                    updates = {ts: list(u) for ts, u in arrivals.updates.items()}
                    responded = list(arrivals.responses.get(item.url_id, []))
                for _, ts, text in posts:
                    final = [(t, u) for t, u in updates.get(ts, []) if not u.startswith("⏳")]
                    if final:
                        snap_done, final_text = final[-1]
                        break
                if snap_done or responded:
                    break
                time.sleep(0.05)
            if snap_done is None:
                snap_done = time.monotonic()
                problems.append(f"/snapshot create: no result in {BIG_CHANNEL} "
                                f"(response-URL posts: {[r.body for r in fake.responses if r.url_id == item.url_id]})")
            # The fake's own view of the message, for the report.
            messages = [m for m in fake.messages(BIG_CHANNEL)]
            snap_s = snap_done - snap_from
            time.sleep(1.0)
            after = proc_status(bot.pid)
            snap_peak = sampler.peak(snap_from, snap_done)
            tree_peak = sampler.tree_peak(snap_from, snap_done)
        finally:
            sampler.stop()
            crashed = bot.poll()
            if crashed is None:
                stop_bot(bot)
        rejected = [c for c in fake.calls if not c.ok]
    if crashed is not None:
        problems.insert(0, f"THE BOT EXITED during the run with status {crashed}")
    for call in rejected[:5]:
        problems.append(f"Slack refused {call.method}: {call.error}")
    snap_files = sorted((root / "snapshots" / "big").glob("*"))
    snap_bytes = sum(f.stat().st_size for f in snap_files if f.is_file())

    # ---- report ----
    rows = [("`/migrate status` via `dbops serve --http`, sequential", stats(seq_ms)),
            ("`/migrate status` via `dbops serve --http`, concurrency 10", stats(conc_ms)),
            ("`dbops migrate status` CLI process", stats(cli_ms)),
            ("`psql -c 'SELECT version, dirty FROM schema_migrations'`", stats(psql_ms))]
    print()
    print(f"machine: {os.cpu_count()} cores; big database {snapshot_data.human(big_size)}")
    print()
    print("| path | n | p50 ms | p90 ms | p99 ms | max ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, s in rows:
        if s["n"]:
            print(f"| {label} | {s['n']} | {s['p50']:.0f} | {s['p90']:.0f} | {s['p99']:.0f} | {s['max']:.0f} |")
    print()
    children = ", ".join(f"{name} {peak / MB:.1f} MB (VmHWM {sampler.child_hwm.get(name, 0) / MB:.1f})"
                         for name, peak in sorted(sampler.child_peak.items())) or "none seen"
    print("| bot memory | MB |")
    print("|---|---:|")
    print(f"| RSS after start | {rss_started / MB:.1f} |")
    print(f"| RSS idle after {2 * args.commands + 1} status commands (5 s, min–max) | "
          f"{idle_min / MB:.1f}–{idle_peak / MB:.1f} |")
    print(f"| VmHWM before the snapshot | {idle_now.get('VmHWM', 0) / MB:.1f} |")
    print(f"| RSS peak during `/snapshot create` (bot process) | {snap_peak / MB:.1f} |")
    print(f"| RSS peak during it, bot + children summed per sample | {tree_peak / MB:.1f} |")
    print(f"| VmHWM after the snapshot (bot process) | {after.get('VmHWM', 0) / MB:.1f} |")
    print(f"| RSS 1 s after the result | {after.get('VmRSS', 0) / MB:.1f} |")
    print(f"children during the snapshot (peak RSS by program): {children}")
    print(f"/snapshot create: ack {snap_ack_ms:.0f} ms, result in {BIG_CHANNEL} after {snap_s:.1f} s; "
          f"snapshot files {snap_bytes / MB:.1f} MB; messages in {BIG_CHANNEL}: {len(messages)}")
    if final_text:
        print(f"result text: {final_text[:200]!r}")
    bot_peak = max(snap_peak, after.get("VmHWM", 0)) / MB
    print()
    print(f"verdict: bot peak {bot_peak:.1f} MB against < {TARGET_BOT_MB:.0f} MB (issue 4): "
          f"{'MET' if bot_peak < TARGET_BOT_MB else 'NOT MET'}; snapshot work (bot + children, summed) "
          f"{tree_peak / MB:.1f} MB against < {TARGET_SNAPSHOT_MB:.0f} MB (issue 3): "
          f"{'MET' if tree_peak / MB < TARGET_SNAPSHOT_MB else 'NOT MET'}")
    if problems:
        print("\nPROBLEMS:")
        for p in problems:
            print(f"  - {p}")
    if args.json:
        result.update({
            "status_seq_ms": stats(seq_ms), "status_c10_ms": stats(conc_ms), "cli_ms": stats(cli_ms),
            "psql_ms": stats(psql_ms), "rss_start_mb": round(rss_started / MB, 1),
            "rss_idle_mb": [round(idle_min / MB, 1), round(idle_peak / MB, 1)],
            "hwm_before_snapshot_mb": round(idle_now.get("VmHWM", 0) / MB, 1),
            "snapshot_bot_peak_mb": round(snap_peak / MB, 1), "snapshot_tree_peak_mb": round(tree_peak / MB, 1),
            "hwm_after_mb": round(after.get("VmHWM", 0) / MB, 1),
            "children_peak_mb": {k: round(v / MB, 1) for k, v in sampler.child_peak.items()},
            "snapshot_s": round(snap_s, 1), "snapshot_mb": round(snap_bytes / MB, 1), "problems": problems})
        print(json.dumps(result))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
