"""Load, fast variant (bench/slack_ack.py measures the timings): 50 concurrent slash commands
from 10 users while a snapshot and the scheduled jobs run — every command acknowledged and
answered once, no error, and migrations one at a time.

The long variant sends more, still 50 at a time: ``DBOPS_LOAD_COMMANDS=1000`` (bench/long_tests.py)."""

from __future__ import annotations

import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import psycopg

from tests.conftest import wait_for
from tests.slack_bed import serving, text_of
from tests.slack_fake import FakeSlack

FILES = {f"{v}_t{v}.up.sql": f"CREATE TABLE t{v} (id bigint PRIMARY KEY);" for v in range(1, 6)} | {
    f"{v}_t{v}.down.sql": f"DROP TABLE t{v};" for v in range(1, 6)}
USERS = [f"U0USER{n}" for n in range(10)]
MIX = ["/migrate status", "/snapshot list", "/dbops history", "/migrate validate", "/migrate up 1"]
COMMANDS = max(25, int(os.environ.get("DBOPS_LOAD_COMMANDS", "50")))  # 50 in flight at a time
UPS = COMMANDS // len(MIX) + (1 if COMMANDS % len(MIX) == len(MIX) else 0)


def test_fifty_concurrent_commands_while_a_snapshot_and_the_scheduler_run(make_bed, control_url):
    with FakeSlack(users={u: u.lower() for u in USERS}) as fake:
        # The `up 1`s queue for the lock; none should give up waiting on a slow machine.
        bed = make_bed(FILES, control=control_url, channels=["C0INCIDENT"], lock_wait_seconds=60)
        with serving(bed, fake, control_url) as desk:
            env = bed.settings.environment("test")
            desk.command("create --reason before-load", command="/snapshot")
            ticking = threading.Event()

            def scheduler():  # the watchers' and the cleanup job's ticks, back to back
                while not ticking.is_set():
                    desk.bot.watchers.tick(env)
                    for watcher in desk.bot.watchers.also:
                        desk.bot.watchers.tick(env, watcher)
                    ticking.wait(0.05)

            ticker = threading.Thread(target=scheduler, daemon=True)
            ticker.start()
            sent = [(MIX[i % len(MIX)], USERS[i % len(USERS)]) for i in range(COMMANDS)]
            with ThreadPoolExecutor(max_workers=50) as pool:
                acks = list(pool.map(lambda c: desk.command(c[0].split(" ", 1)[1], command=c[0].split(" ", 1)[0],
                                                            user=c[1]), sent))
            assert [status for status, _, _ in acks] == [200] * COMMANDS

            private = {url for (command, _), (_, _, url) in zip(sent, acks) if "up" not in command}
            wait_for(lambda: private <= {r.url_id for r in fake.responses}, what="every private answer")
            ups = wait_for(lambda: [m for m in fake.messages("C0INCIDENT") if "/migrate up" in text_of(m)
                                    and "elapsed" not in text_of(m)] if len(
                [m for m in fake.messages("C0INCIDENT") if "/migrate up" in text_of(m) and "elapsed" not in text_of(m)]
            ) == UPS else None, timeout=60 + COMMANDS / 10, what="every migrate up result")
            ticking.set()
            ticker.join()

    assert len(ups) == UPS and bed.state() == (5, False)  # five applied, one at a time; the rest refused or no-op
    assert sorted(r.url_id for r in fake.responses if r.url_id in private) == sorted(private)  # each once
    with psycopg.connect(control_url) as conn:
        applied = conn.execute("SELECT count(*) FROM dbops_audit_log WHERE command = 'migrate up' "
                               "AND outcome = 'done'").fetchone()[0]
        errors = conn.execute("SELECT command, detail FROM dbops_audit_log WHERE outcome = 'error'").fetchall()
    # The late `up 1`s find nothing pending and say so; nothing else went wrong.
    assert applied == 5 and [d for _, d in errors] == ["up 1 asks for 1 migrations, but only 0 are pending. "
                                                       "Nothing was changed."] * (UPS - 5)
    assert all("Traceback" not in json.dumps(c.params) for c in fake.calls)
