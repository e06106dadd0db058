"""Benchmark: how fast `dbops serve --http` acknowledges signed slash commands, and its memory.

Not a test (pytest does not collect it): run it by hand, see bench/README.md.

    .venv/bin/python bench/slack_ack.py [--commands 200] [--concurrency 20] [--port P] [--keep] [--json]
    .venv/bin/python bench/slack_ack.py --busy 5 --commands 20 --concurrency 5   # the bot's workers busy

In one run it:

1. starts a throw-away embedded PostgreSQL 18 (default durability) in a directory under /tmp,
   creates a managed database and a control database, writes a dbops TOML config with one
   environment ``bench`` (the demo migrations, a snapshot directory, ``channels =
   ["C0BENCH"]``, ``operators = []``) and brings the managed database to version 3 with
   ``dbops migrate up 3`` (which also takes a snapshot), so status, dry-run and the
   snapshot list have something to show;
2. starts the fake Slack of the test suite (``tests/slack_fake.FakeSlack``: a real local
   HTTP server for the Web API and the response URLs, which rejects what Slack rejects);
3. starts the bot as an operator would, ``python -m bot.cli.main serve --http --host 127.0.0.1
   --port P``, with ``DBOPS_CONFIG``, ``SLACK_BOT_TOKEN``, ``SLACK_SIGNING_SECRET`` and
   ``SLACK_API_URL`` in its environment only, and waits for ``GET /health``;
4. sends COMMANDS slash commands signed as Slack signs them, from 10 users, CONCURRENCY in
   flight at a time (a thread pool, one new HTTP connection per request), in a fixed mix
   repeated every 20 commands and shuffled (seeded): ``/migrate status`` 6, ``/snapshot
   list`` 3, ``/dbops history`` 3, ``/migrate validate`` 3, ``/dbops help`` 2, the usage
   errors ``/migrate upp`` and ``/snapshot lst`` (answered in the acknowledgement itself)
   and ``/migrate dry-run`` 1 (rolled back; shown in the channel as a progress message that
   its result replaces). Nothing changes the managed database, so runs repeat. Each
   request's time to its HTTP response, whatever its status, is the acknowledgement Slack
   waits three seconds for;
5. waits until every command's answer has reached the fake: a post to its response URL, the
   usage error in the acknowledgement, or, for a dry-run, the result replacing its progress
   message; counts them (a second answer to one command is reported), and times the slowest
   from send to answer;
6. samples the bot's VmRSS from /proc every 50 ms (and VmHWM at the end), and reports the CPU
   time of the bot, the PostgreSQL server and this process while sending, the sessions the
   bot opened per database, and what one bare PostgreSQL session costs;
7. prints a table and a verdict against the targets (p99 acknowledgement under 300 ms; the
   bot under 200 MB resident), stops the bot with SIGTERM, stops the server and removes the
   directory (``--keep`` keeps it, with the bot's log).

``--busy N`` first holds the environment's migration lock from a separate session, as a
deploy script's ``migrate up`` would, and sends N ``/migrate dry-run`` that wait for it (up to
``lock_wait_seconds``, 15 s) inside the bot; then it sends the measured commands, and releases
the lock once they are all acknowledged.

Exit status: 0 when every command was acknowledged with HTTP 200 and answered exactly once
and the bot stayed up; 1 otherwise (the targets do not affect it); 2 on a usage error.
"""

from __future__ import annotations

import argparse
import atexit
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run from a checkout without installing: make `commands` and `tests` importable.
sys.path.insert(0, str(ROOT))

from commands.pg import embedded  # noqa: E402
from tests.slack_fake import FakeSlack  # noqa: E402
from tests.slack_fake_requests import sign, slash_command_body  # noqa: E402

TARGET_P99_MS = 300.0
TARGET_RSS_MB = 200.0
SLACK_DEADLINE_MS = 3000.0  # Slack shows the user an error when the ack takes longer
CHANNEL = "C0BENCH"
ENV = "bench"
USERS = {f"U0BENCH{i:02d}": f"bench{i:02d}" for i in range(10)}
MB = 1024 * 1024

# One block of 20 commands, repeated and shuffled (seeded): read-only or rolled back.
MIX: tuple[tuple[str, str, str], ...] = (
    ("status", "/migrate", "status"),
    ("status", "/migrate", "status"),
    ("status", "/migrate", "status bench"),
    ("status", "/migrate", "status"),
    ("status", "/migrate", "status"),
    ("snapshot list", "/snapshot", "list"),
    ("snapshot list", "/snapshot", "list bench"),
    ("snapshot list", "/snapshot", "list"),
    ("history", "/dbops", "history"),
    ("history", "/dbops", "history bench"),
    ("history", "/dbops", "history"),
    ("validate", "/migrate", "validate"),
    ("validate", "/migrate", "validate bench"),
    ("validate", "/migrate", "validate"),
    ("help", "/dbops", "help"),
    ("help", "/dbops", "help"),
    ("status", "/migrate", "status"),
    ("usage error", "/migrate", "upp"),
    ("usage error", "/snapshot", "lst"),
    ("dry-run", "/migrate", "dry-run"),
)
USAGE_ERROR, DRY_RUN = "usage error", "dry-run"


@dataclass
class Sent:
    index: int
    kind: str
    command: str
    text: str
    user: str
    response_url: str = ""
    url_id: str = ""
    started: float = 0.0     # time.monotonic() just before connecting
    acked: float = 0.0       # the whole HTTP response read
    status: int | None = None
    body: bytes = b""
    error: str | None = None
    answered: float | None = None  # when its answer reached the fake

    @property
    def ack_ms(self) -> float:
        return (self.acked - self.started) * 1000


@dataclass
class Arrivals:
    """What reached the fake, with times: wrapped around its two entry points."""

    responses: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    posts: list[tuple[float, str, str]] = field(default_factory=list)     # (time, ts, text) of chat.postMessage
    updates: dict[str, list[tuple[float, str]]] = field(default_factory=lambda: defaultdict(list))  # ts -> (time, text)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def install(self, fake: FakeSlack) -> None:
        handle_response, handle_api = fake.handle_response, fake.handle_api

        def response(url_id: str, body: dict) -> tuple[int, str]:
            answer = handle_response(url_id, body)
            with self.lock:
                self.responses[url_id].append(time.monotonic())
            return answer

        def api(method: str, params: dict, token: str | None) -> tuple[int, dict, dict]:
            status, headers, body = handle_api(method, params, token)
            now = time.monotonic()
            if body.get("ok") and method == "chat.postMessage":
                with self.lock:
                    self.posts.append((now, body["ts"], params.get("text") or ""))
            elif body.get("ok") and method == "chat.update":
                with self.lock:
                    self.updates[params["ts"]].append((now, params.get("text") or ""))
            return status, headers, body

        fake.handle_response, fake.handle_api = response, api  # the handler calls self.fake.handle_*


class RssSampler(threading.Thread):
    """VmRSS of one process from /proc every ``interval`` seconds."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        super().__init__(name="rss", daemon=True)
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, int]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            rss = proc_status(self.pid).get("VmRSS")
            if rss is not None:
                self.samples.append((time.monotonic(), rss))
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def peak(self, since: float = 0.0) -> int:
        return max((rss for t, rss in self.samples if t >= since), default=0)


def proc_status(pid: int) -> dict[str, int]:
    """The kB fields of /proc/PID/status, in bytes; empty when the process is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    fields = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if value.strip().endswith(" kB"):
            fields[name] = int(value.split()[0]) * 1024
    return fields


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of one process (its threads included), from /proc/PID/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU time all cores spent not idle (nor waiting for I/O), from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def server_cpu_seconds(postmaster: int) -> float:
    """The PostgreSQL server's CPU time: the postmaster, its live children, and (through the
    postmaster's cutime/cstime) the backends that already exited."""
    total = 0.0
    try:
        fields = Path(f"/proc/{postmaster}/stat").read_text().rsplit(")", 1)[1].split()
        total += sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
        children = Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split()
    except OSError:
        return total
    return total + sum(cpu_seconds(int(pid)) for pid in children)


def sessions(base_url: str) -> dict[str, int]:
    """Sessions opened so far per database (pg_stat_database.sessions, counted as they end)."""
    import psycopg

    with psycopg.connect(base_url, autocommit=True) as conn:
        rows = conn.execute("SELECT datname, sessions FROM pg_stat_database WHERE datname IS NOT NULL").fetchall()
    return dict(rows)


def connection_cost(url: str, postmaster: int, count: int = 200) -> tuple[float, float]:
    """What one new session costs the server and the client: ``count`` bare connections (connect,
    SELECT 1, close) one after another, as the bot opens one per operation. Returns
    (server CPU ms, wall ms) per connection."""
    import psycopg

    server_before, started = server_cpu_seconds(postmaster), time.monotonic()
    for _ in range(count):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SELECT 1")
    wall = time.monotonic() - started
    time.sleep(0.2)  # let the last backends exit, so the postmaster has their CPU time
    return (server_cpu_seconds(postmaster) - server_before) / count * 1000, wall / count * 1000


def own_cpu() -> float:
    """This process's CPU time: the load generator and the fake Slack."""
    times = os.times()
    return times.user + times.system


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(path: Path, *, control_url: str, database_url: str, snapshot_dir: Path) -> None:
    migrations = ROOT / "deploy" / "demo" / "migrations"
    path.write_text(f"""\
# Written by bench/slack_ack.py
[control]
database_url = {json.dumps(control_url)}

[environments.{ENV}]
database_url = {json.dumps(database_url)}
migrations_dir = {json.dumps(str(migrations))}
snapshot_dir = {json.dumps(str(snapshot_dir))}
channels = [{json.dumps(CHANNEL)}]
operators = []
approvers = ["U0BENCHAPPROVER"]
""")


def child_environ(**extra: str) -> dict[str, str]:
    """This process's environment without anything that could steer the child elsewhere."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PG", "SLACK_", "DBOPS_")) and k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(ROOT)
    return {**env, **extra}


def stop_bot(bot: subprocess.Popen, timeout: float = 20) -> tuple[int, bool]:
    """SIGTERM, as an operator stops it; killed if it is not gone within ``timeout``.
    Its exit status, and whether it had to be killed."""
    bot.send_signal(signal.SIGTERM)
    try:
        return bot.wait(timeout=timeout), False
    except subprocess.TimeoutExpired:
        bot.kill()
        return bot.wait(), True


def start_bot(config: Path, fake: FakeSlack, *, port: int, bot_token: str, secret: str,
              log_path: Path) -> subprocess.Popen:
    """``dbops serve --http`` as an operator starts it: secrets only in the child's environment."""
    with open(log_path, "wb") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "bot.cli.main", "serve", "--http", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            env=child_environ(DBOPS_CONFIG=str(config), SLACK_BOT_TOKEN=bot_token, SLACK_SIGNING_SECRET=secret,
                              SLACK_API_URL=fake.api_url))


def wait_for_health(port: int, bot: subprocess.Popen, deadline_s: float) -> float:
    """Poll GET /health until it answers 200; return how long it took. Raises on timeout or exit."""
    started = time.monotonic()
    last = "no answer"
    while time.monotonic() - started < deadline_s:
        if bot.poll() is not None:
            raise RuntimeError(f"the bot exited with status {bot.returncode} before /health answered")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/health")
            answer = conn.getresponse()
            body = answer.read()
            conn.close()
            if answer.status == 200:
                return time.monotonic() - started
            last = f"HTTP {answer.status}: {body[:200]!r}"
        except OSError as err:
            last = str(err)
        time.sleep(0.1)
    raise RuntimeError(f"/health did not answer 200 within {deadline_s:.0f} s (last: {last})")


def send(item: Sent, port: int, secret: str, timeout: float) -> Sent:
    body = slash_command_body(item.command, item.text, user_id=item.user, user_name=USERS[item.user],
                              channel_id=CHANNEL, channel_name="bench", response_url=item.response_url)
    headers = sign(secret, body)  # signed now, as Slack signs at send time
    item.started = time.monotonic()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        conn.request("POST", "/slack/events", body=body.encode(), headers=headers)
        answer = conn.getresponse()
        item.body = answer.read()
        item.status = answer.status
        conn.close()
    except OSError as err:
        item.error = f"{type(err).__name__}: {err}"
    item.acked = time.monotonic()
    return item


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def plan_commands(count: int, fake: FakeSlack, seed: int) -> list[Sent]:
    rng = random.Random(seed)
    blocks = [list(MIX) for _ in range(-(-count // len(MIX)))]
    for block in blocks:
        rng.shuffle(block)
    chosen = [c for block in blocks for c in block][:count]
    users = list(USERS)
    items = []
    for i, (kind, command, text) in enumerate(chosen):
        user = users[i % len(users)]
        url = fake.response_url(channel=CHANNEL, user=user)
        items.append(Sent(index=i, kind=kind, command=command, text=text, user=user,
                          response_url=url, url_id=url.rsplit("/", 1)[1]))
    return items


def match_dry_runs(items: list[Sent], arrivals: Arrivals) -> tuple[int, list[str]]:
    """Pair each dry-run with a progress message whose last update is a result (not "⏳ …").

    Progress messages name the user and the command; they are paired with that user's
    dry-runs in send order (the answer time of a pairing is approximate when one user has
    two dry-runs in flight, which the mix makes rare). Returns (answered, problems).
    """
    problems = []
    with arrivals.lock:
        posts = list(arrivals.posts)
        updates = {ts: list(u) for ts, u in arrivals.updates.items()}
    finished: dict[str, list[float]] = defaultdict(list)
    for _, ts, text in sorted(posts):
        final = [t for t, utext in updates.get(ts, []) if not utext.startswith("⏳")]
        user = next((u for u in USERS if u in text), None)
        if final and user:
            finished[user].append(final[-1])
        if len(final) > 1:
            problems.append(f"progress message {ts} replaced by a result {len(final)} times")
    answered = 0
    for user in USERS:
        mine = sorted((i for i in items if i.kind == DRY_RUN and i.user == user), key=lambda i: i.started)
        for item, when in zip(mine, sorted(finished[user])):
            item.answered = when
            answered += 1
        if len(finished[user]) > len(mine):
            problems.append(f"{len(finished[user]) - len(mine)} more dry-run results for {user} than dry-runs sent")
    return answered, problems


def collect_answers(items: list[Sent], arrivals: Arrivals) -> tuple[int, list[str]]:
    """Mark each command answered (with its time) from what reached the fake."""
    problems: list[str] = []
    answered = 0
    with arrivals.lock:
        responses = {k: list(v) for k, v in arrivals.responses.items()}
    for item in items:
        try:
            in_ack = json.loads(item.body or b"{}")
        except ValueError:
            in_ack = {}
        posts = responses.get(item.url_id, [])
        if in_ack.get("text"):
            # Answered in the acknowledgement itself (a usage error, privately); no post is expected.
            item.answered = item.acked
            answered += 1
            if item.kind != USAGE_ERROR:
                problems.append(f"#{item.index} {item.command} {item.text}: answered in the ack, "
                                f"{in_ack.get('text', '')[:100]!r}")
            if posts:
                problems.append(f"#{item.index} {item.command} {item.text}: {len(posts)} posts after "
                                "an answer in the ack")
        elif item.kind == USAGE_ERROR:
            if item.status == 200:
                problems.append(f"#{item.index} {item.command} {item.text}: a usage error acknowledged "
                                "without its answer")
        elif item.kind != DRY_RUN:
            if posts:
                item.answered = posts[0]
                answered += 1
            if len(posts) > 1:
                problems.append(f"#{item.index} {item.command} {item.text}: answered {len(posts)} times")
    more, dry_problems = match_dry_runs(items, arrivals)
    # A dry-run's result goes to its response URL only if its progress message could not be posted.
    for item in items:
        if item.kind == DRY_RUN and item.answered is None and responses.get(item.url_id):
            item.answered = responses[item.url_id][0]
            more += 1
    return answered + more, problems + dry_problems


def bot_log_summary(path: Path) -> Counter:
    levels: Counter = Counter()
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return levels
    for line in lines:
        try:
            levels[json.loads(line).get("level", "?")] += 1
        except ValueError:
            # Not structlog: the standard logging of waitress or bolt ("Task queue depth is 12").
            levels[re.sub(r"[0-9]+", "N", line.strip())[:60]] += 1
    return levels


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commands", type=int, default=200, help="slash commands to send (default 200)")
    parser.add_argument("--concurrency", type=int, default=20, help="requests in flight at once (default 20)")
    parser.add_argument("--port", type=int, default=0, help="the bot's port (default: a free one)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (data, config, bot log)")
    parser.add_argument("--answer-timeout", type=float, default=120.0,
                        help="seconds to wait for every answer after the last acknowledgement (default 120)")
    parser.add_argument("--busy", type=int, default=0, metavar="N",
                        help="first hold the environment's migration lock (as a deploy's `migrate up` would) and "
                             "send N /migrate dry-run that wait for it, then send the measured commands; the lock "
                             "is released once they are acknowledged (default 0: no)")
    parser.add_argument("--seed", type=int, default=4, help="seed of the command order (default 4)")
    parser.add_argument("--json", action="store_true", help="also print the result as one JSON line")
    args = parser.parse_args(argv)
    if args.commands < 1 or args.concurrency < 1:
        parser.error("--commands and --concurrency must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # atexit handlers (server stop, directory removal) also run on SIGTERM.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    # A short path: the server's Unix socket lives in its data directory (108-byte limit).
    root = Path(tempfile.mkdtemp(prefix="dbops-bench-ack-", dir="/tmp"))
    if args.keep:
        atexit.register(lambda: print(f"kept {root} (config dbops.toml, bot log bot.log)"))
    else:
        # Registered before the server starts, so it runs after the wheel's own atexit
        # handler has stopped the server (atexit runs handlers last-in, first-out).
        atexit.register(shutil.rmtree, root, ignore_errors=True)

    base_url = embedded.start(root / "data")
    postmaster = int((root / "data" / "postmaster.pid").read_text().split()[0])
    control_url = embedded.ensure_database(base_url, "dbops_control")
    database_url = embedded.ensure_database(base_url, "bench_app")
    config = root / "dbops.toml"
    write_config(config, control_url=control_url, database_url=database_url, snapshot_dir=root / "snapshots")
    setup = subprocess.run([sys.executable, "-m", "bot.cli.main", "migrate", "up", "3", "--env", ENV], check=False,
                           cwd=ROOT, env=child_environ(DBOPS_CONFIG=str(config)), capture_output=True, text=True)
    if setup.returncode != 0:
        print(f"dbops migrate up 3 failed ({setup.returncode}):\n{setup.stdout}{setup.stderr}", file=sys.stderr)
        return 1

    problems: list[str] = []
    bot_token, secret = "xoxb-bench-" + os.urandom(8).hex(), os.urandom(16).hex()
    port = args.port or free_port()
    with FakeSlack(bot_token=bot_token, users=dict(USERS), channels={CHANNEL: "bench"},
                   usergroups={}) as fake:
        arrivals = Arrivals()
        arrivals.install(fake)
        log_path = root / "bot.log"
        bot = start_bot(config, fake, port=port, bot_token=bot_token, secret=secret, log_path=log_path)
        sampler = RssSampler(bot.pid)
        sampler.start()
        try:
            try:
                startup_s = wait_for_health(port, bot, deadline_s=60)
            except RuntimeError as err:
                print(f"{err}; the bot's log ends:\n{log_path.read_text(errors='replace')[-3000:]}", file=sys.stderr)
                return 1  # the finally below stops the bot
            time.sleep(1.0)  # settle: the health check's connections, lazy imports
            idle_rss = proc_status(bot.pid).get("VmRSS", 0)
            items = plan_commands(args.commands, fake, args.seed)
            print(f"bot pid {bot.pid} on 127.0.0.1:{port}: /health after {startup_s:.2f} s, idle RSS "
                  f"{idle_rss / MB:.1f} MB; sending {len(items)} commands at concurrency {args.concurrency} …",
                  flush=True)
            busy_items: list[Sent] = []
            holder = None
            if args.busy:
                import psycopg

                from commands.pg.lock import golang_migrate_lock_key

                holder = psycopg.connect(database_url, autocommit=True, application_name="bench-deploy")
                key = golang_migrate_lock_key(schema="public", table="schema_migrations", database_url=database_url)
                holder.execute("SELECT pg_advisory_lock(%s)", (key,))
                busy_items = [Sent(index=-1 - i, kind=DRY_RUN, command="/migrate", text="dry-run",
                                   user=list(USERS)[i % len(USERS)]) for i in range(args.busy)]
                for item in busy_items:
                    item.response_url = fake.response_url(channel=CHANNEL, user=item.user)
                    item.url_id = item.response_url.rsplit("/", 1)[1]
                with ThreadPoolExecutor(max_workers=args.busy) as pool:
                    list(pool.map(lambda item: send(item, port, secret, timeout=30), busy_items))
                # Wait until the bot's workers really are waiting for the lock, not a guessed time.
                waiting_deadline = time.monotonic() + 30
                while holder.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                                     ).fetchone()[0] < args.busy:
                    if time.monotonic() > waiting_deadline:
                        raise RuntimeError(f"{args.busy} dry-runs did not start waiting for the lock within 30 s")
                    time.sleep(0.02)
                print(f"holding the migration lock; {args.busy} /migrate dry-run acknowledged in "
                      f"{', '.join(f'{i.ack_ms:.0f}' for i in busy_items)} ms and waiting for it", flush=True)
            sessions_before = sessions(base_url)
            cpu_before = cpu_seconds(bot.pid)
            busy_before, server_before, own_before = machine_busy_seconds(), server_cpu_seconds(postmaster), own_cpu()
            sending = time.monotonic()
            with ThreadPoolExecutor(max_workers=args.concurrency, thread_name_prefix="slack") as pool:
                list(pool.map(lambda item: send(item, port, secret, timeout=30), items))
            sent = time.monotonic()
            if holder is not None:
                holder.close()  # the lock is released: the waiting dry-runs go ahead
                print(f"released the migration lock {sent - sending:.2f} s after the first measured send", flush=True)
            cpu_sending = cpu_seconds(bot.pid) - cpu_before
            busy_sending = machine_busy_seconds() - busy_before
            server_sending = server_cpu_seconds(postmaster) - server_before
            own_sending = own_cpu() - own_before

            # Every command's answer must reach the fake; poll with a deadline.
            deadline = sent + args.answer_timeout
            answered, answer_problems = collect_answers(busy_items + items, arrivals)
            while answered < len(busy_items) + len(items) and time.monotonic() < deadline and bot.poll() is None:
                time.sleep(0.05)
                answered, answer_problems = collect_answers(busy_items + items, arrivals)
            all_answered = time.monotonic()
            cpu_total = cpu_seconds(bot.pid) - cpu_before
            time.sleep(1.0)  # a late duplicate would show up here (and the server's statistics catch up)
            sessions_after = sessions(base_url)
            connect_server_ms, connect_wall_ms = connection_cost(control_url, postmaster)
            answered, answer_problems = collect_answers(busy_items + items, arrivals)
            problems += answer_problems
            hwm = proc_status(bot.pid).get("VmHWM", 0)
            peak_rss = sampler.peak()
            peak_during = sampler.peak(since=sending)
        finally:
            sampler.stop()
            crashed = bot.poll()
            if crashed is None:
                stopped, killed = stop_bot(bot)
                if killed:
                    problems.append("the bot did not stop within 20 s of SIGTERM (killed)")
            else:
                stopped = crashed
        rejected = [c for c in fake.calls if not c.ok]
        refused = [r for r in fake.responses if not r.ok]

    if crashed is not None:
        problems.insert(0, f"THE BOT EXITED during the run with status {crashed}")
    elif stopped != 0:
        problems.append(f"the bot exited with status {stopped} after SIGTERM")
    levels = bot_log_summary(log_path)

    # ---- report ----------------------------------------------------------------------
    failed = [i for i in busy_items + items if i.error or i.status != 200]
    # Every HTTP response counts, whatever its status: a 404 after 6 s is a 6 s acknowledgement.
    acks = [i.ack_ms for i in items if not i.error]
    late = [i for i in items if not i.error and i.ack_ms > SLACK_DEADLINE_MS]
    lost = [i for i in busy_items + items if i.answered is None]
    e2e = [(i.answered - i.started) * 1000 for i in items if i.answered is not None]  # the measured ones
    wall = sent - sending
    for item in failed[:10]:
        problems.append(f"#{item.index} {item.command} {item.text}: {item.error or f'HTTP {item.status}'} "
                        f"{item.body[:200]!r}")
    for item in lost[:10]:
        problems.append(f"#{item.index} {item.command} {item.text} by {item.user}: no answer reached Slack")
    for call in rejected[:10]:
        problems.append(f"Slack refused {call.method}: {call.error}")
    for response in refused[:10]:
        problems.append(f"Slack refused a response-URL post: {response.error}")
    if levels.get("error") or levels.get("critical"):
        problems.append(f"the bot logged {levels.get('error', 0)} errors (see its log; --keep keeps it)")

    by_kind: dict[str, list[float]] = defaultdict(list)
    for item in items:
        if not item.error:
            by_kind[item.kind].append(item.ack_ms)

    print()
    print(f"{len(items)} commands, concurrency {args.concurrency}"
          f"{f', after {len(busy_items)} dry-runs waiting for the held migration lock' if busy_items else ''}: "
          f"{wall:.2f} s to send ({len(items) / wall:.0f} commands/s)")
    print()
    print("| acknowledgement (HTTP response) | ms |")
    print("|---|---:|")
    if acks:
        for label, value in (("p50", percentile(acks, 50)), ("p90", percentile(acks, 90)),
                             ("p99", percentile(acks, 99)), ("max", max(acks)), ("mean", statistics.fmean(acks))):
            print(f"| {label} | {value:.0f} |")
    print()
    print("| kind | n | p50 ms | p99 ms | max ms |")
    print("|---|---:|---:|---:|---:|")
    for kind, values in sorted(by_kind.items(), key=lambda kv: -len(kv[1])):
        print(f"| {kind} | {len(values)} | {percentile(values, 50):.0f} | {percentile(values, 99):.0f} "
              f"| {max(values):.0f} |")
    print()
    print(f"errors (not HTTP 200): {len(failed)}; acknowledged after Slack's 3 s: {len(late)}")
    with_busy = " (the busy dry-runs included)" if busy_items else ""
    print(f"answers delivered: {answered}/{len(busy_items) + len(items)}{with_busy} "
          f"(response URL posts {sum(len(v) for v in arrivals.responses.values())}, "
          f"dry-run results in the channel {sum(1 for i in busy_items + items if i.kind == DRY_RUN and i.answered)}, "
          f"usage errors in the ack {sum(1 for i in items if i.kind == USAGE_ERROR and i.answered)})")
    if e2e:
        print(f"end-to-end (send to answer at the fake): p50 {percentile(e2e, 50):.0f} ms, "
              f"p99 {percentile(e2e, 99):.0f} ms, slowest {max(e2e):.0f} ms; last answer "
              f"{(all_answered - sending):.2f} s after the first send")
    print(f"bot RSS: idle {idle_rss / MB:.1f} MB, peak {peak_during / MB:.1f} MB during the run "
          f"(sampled every 50 ms, {len(sampler.samples)} samples), VmHWM {hwm / MB:.1f} MB")
    print(f"bot CPU: {cpu_sending:.2f} s while sending ({cpu_sending / wall:.0%} of one core), "
          f"{cpu_total:.2f} s until the last answer: {cpu_total / len(items) * 1000:.1f} ms per command")
    print(f"CPU while sending, of {os.cpu_count()} cores × {wall:.2f} s = {os.cpu_count() * wall:.2f} s: machine busy "
          f"{busy_sending:.2f} s ({busy_sending / wall:.0%} of one core); bot {cpu_sending:.2f} s, PostgreSQL "
          f"{server_sending:.2f} s, this process (clients, fake Slack) {own_sending:.2f} s, anything else (the kernel, "
          f"other processes) {busy_sending - cpu_sending - server_sending - own_sending:.2f} s")
    opened = {db: sessions_after.get(db, 0) - sessions_before.get(db, 0) for db in ("bench_app", "dbops_control")}
    print("PostgreSQL sessions the bot opened: " + ", ".join(
        f"{db} {n} ({n / len(items):.2f} per command)" for db, n in opened.items()))
    print(f"one bare PostgreSQL session (connect, SELECT 1, close; 200 in a row after the run): "
          f"{connect_wall_ms:.1f} ms, server CPU {connect_server_ms:.1f} ms")
    print(f"bot log lines by level: {dict(levels)}; Web API calls {len(fake.calls)} "
          f"({dict(Counter(c.method for c in fake.calls))})")
    p99 = percentile(acks, 99) if acks else float("inf")
    peak_mb = max(hwm, peak_rss) / MB
    print()
    print(f"verdict: ack p99 {p99:.0f} ms against < {TARGET_P99_MS:.0f} ms: "
          f"{'MET' if p99 < TARGET_P99_MS and not failed else 'NOT MET'}; "
          f"bot peak RSS {peak_mb:.1f} MB against < {TARGET_RSS_MB:.0f} MB: "
          f"{'MET' if peak_mb < TARGET_RSS_MB else 'NOT MET'}; "
          f"commands lost {len(lost)}, errors {len(failed)}")
    if problems:
        print()
        print("PROBLEMS:")
        for problem in problems:
            print(f"  - {problem}")
    if args.json:
        print(json.dumps({
            "commands": len(items), "concurrency": args.concurrency, "send_s": round(wall, 3),
            "ack_ms": {"p50": percentile(acks, 50), "p90": percentile(acks, 90), "p99": percentile(acks, 99),
                       "max": max(acks)} if acks else None,
            "errors": len(failed), "late": len(late), "answered": answered, "lost": len(lost),
            "e2e_max_ms": max(e2e) if e2e else None, "idle_rss_mb": idle_rss / MB,
            "peak_rss_mb": peak_during / MB, "vmhwm_mb": hwm / MB,
            "bot_cpu_s": round(cpu_total, 3), "sessions": opened,
            "session_server_cpu_ms": round(connect_server_ms, 2), "session_wall_ms": round(connect_wall_ms, 2),
            "cpu_while_sending_s": {"machine": round(busy_sending, 3), "bot": round(cpu_sending, 3),
                                    "server": round(server_sending, 3), "bench": round(own_sending, 3),
                                    "else": round(busy_sending - cpu_sending - server_sending - own_sending, 3)},
            "problems": problems,
        }))
    return 1 if (failed or lost or crashed is not None or problems) else 0


if __name__ == "__main__":
    sys.exit(main())
