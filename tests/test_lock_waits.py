"""Lock waits that cannot stall production: a migration behind another session's lock waits
at most lock_timeout per try, is rolled back and retried with backoff, names who blocks it
while it waits, and ends clean at the previous version, naming the blocker, when the tries run
out. Each test has a real second session holding a lock in an open transaction."""

from __future__ import annotations

import threading

import psycopg

from commands import grammar
from commands.identity import Actor
from commands.results import Outcome
from tests.conftest import wait_for

USERS = {"1_users.up.sql": "CREATE TABLE users (id int PRIMARY KEY);\nINSERT INTO users VALUES (1), (2);",
         "1_users.down.sql": "DROP TABLE users;"}
ALTER = {**USERS, "2_email.up.sql": "ALTER TABLE users ADD COLUMN email text;"}
# The look for sessions in the way before a change is off: these pin the retries behind it.
FAST = {"lock_timeout": "200ms", "lock_retry_seconds": 0.05, "blockers": "off"}


class Run:
    """``migrate up`` in a thread, its progress kept as it comes."""

    def __init__(self, bed, text: str = "migrate up") -> None:
        self.progress, self.result = [], None
        self.thread = threading.Thread(target=self._run, args=(bed, text), daemon=True)
        self.thread.start()

    def _run(self, bed, text: str) -> None:
        self.result = bed.executor.run(grammar.parse(text), Actor(user="alice"), progress=self.progress.append)

    def waits(self) -> list:
        return [p.lock_wait for p in list(self.progress) if p.step == "lock-wait"]

    def done(self):
        self.thread.join(timeout=60)
        assert not self.thread.is_alive()
        return self.result


def holding(url: str, statement: str = "SELECT * FROM users", application: str = "report-job") -> psycopg.Connection:
    """A session that ran ``statement`` in a transaction it keeps open (its locks held)."""
    conn = psycopg.connect(url, application_name=application)
    conn.execute(statement)
    return conn


def test_a_blocked_migration_retries_names_the_blocker_and_succeeds_once_it_commits(make_bed):
    bed = make_bed(ALTER, lock_retries=100, **FAST)
    bed.run("migrate up 1")
    blocker = holding(bed.url)
    pid = blocker.info.backend_pid
    run = Run(bed)
    # It has been turned away at least once and tries again, naming the session in its way.
    wait_for(lambda: any(w.attempts >= 2 for w in run.waits()), what="a second try")
    named = [b for w in run.waits() for b in w.blockers]
    assert {b.pid for b in named} == {pid}
    shown = named[0]
    assert (shown.application_name, shown.state, shown.lock, shown.relation) == (
        "report-job", "idle in transaction", "AccessShareLock", "users")
    assert shown.query == "SELECT * FROM users" and shown.session_start is not None
    assert any(w.waited_for == "AccessExclusiveLock on users" for w in run.waits())
    assert bed.state() == (1, False)  # between tries nothing is kept
    blocker.commit()
    result = run.done()
    assert result.outcome is Outcome.DONE and bed.state() == (2, False)
    assert result.lock_wait.attempts >= 2 and result.lock_wait.blockers[0].pid == pid
    blocker.close()


def test_with_the_blocker_kept_the_migration_ends_clean_at_the_previous_version_naming_it(make_bed):
    bed = make_bed(ALTER, lock_retries=2, **FAST)
    bed.run("migrate up 1")
    with holding(bed.url) as blocker:
        result = bed.run("migrate up")
        assert result.outcome is Outcome.FAILED and result.failure.error.sqlstate == "55P03"
        assert bed.state() == (1, False) and result.after.version == 1 and not result.after.dirty
        assert result.lock_wait.attempts == 3  # the first try and two retries
        assert [b.pid for b in result.lock_wait.blockers] == [blocker.info.backend_pid]
        assert bed.query("SELECT count(*) FROM information_schema.columns WHERE column_name = 'email'") == [(0,)]


def test_a_concurrent_index_blocked_before_it_began_is_retried_and_never_left_dirty(make_bed):
    bed = make_bed({**USERS, "2_idx.up.sql": "CREATE INDEX CONCURRENTLY users_id_idx ON users (id);"},
                   lock_retries=2, **FAST)
    bed.run("migrate up 1")
    blocker = holding(bed.url, "LOCK TABLE users IN SHARE UPDATE EXCLUSIVE MODE", "maintenance")
    result = bed.run("migrate up")
    # Tried three times; its dirty mark taken back each time, since nothing of it had run.
    assert result.outcome is Outcome.FAILED and result.lock_wait.attempts == 3
    assert [b.application_name for b in result.lock_wait.blockers] == ["maintenance"]
    assert bed.state() == (1, False) and bed.query("SELECT to_regclass('users_id_idx')") == [(None,)]
    run = Run(bed)
    wait_for(lambda: run.waits(), what="the next up waiting")
    blocker.commit()
    assert run.done().outcome is Outcome.DONE and bed.state() == (2, False)
    assert bed.query("SELECT indisvalid FROM pg_index WHERE indexrelid = 'users_id_idx'::regclass") == [(True,)]
    blocker.close()


def test_while_dbops_waits_for_a_lock_other_sessions_queries_on_the_table_keep_completing(make_bed):
    """The stall a waiting ALTER causes (every query on the table queued behind it) lasts one
    lock_timeout at most: between tries the queue drains. (bench/lock_waits.py measures it.)"""
    bed = make_bed(ALTER, lock_retries=100, **FAST)
    bed.run("migrate up 1")
    blocker = holding(bed.url)
    completed, stop = [], threading.Event()

    def reader() -> None:
        with psycopg.connect(bed.url, autocommit=True) as conn:
            while not stop.is_set():
                conn.execute("SELECT count(*) FROM users").fetchone()
                completed.append(1)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    run = Run(bed)
    wait_for(lambda: run.waits(), what="dbops waiting for the lock")
    before = len(completed)
    wait_for(lambda: len(completed) >= before + 20, what="readers' queries completing while dbops waits")
    assert run.thread.is_alive() and bed.state() == (1, False)  # still waiting, still retrying
    blocker.commit()
    assert run.done().outcome is Outcome.DONE
    stop.set()
    thread.join()
    blocker.close()


def test_under_a_least_privilege_role_a_blocker_is_named_and_only_its_own_sessions_are_signalled(make_bed, app_role):
    """The role sees its own sessions whole and another role's with their query hidden; it may
    end its own, and is refused by name (nothing signalled) for a superuser's."""
    bed = make_bed(ALTER, url=app_role.url, lock_retries=1, **FAST)
    assert bed.run("migrate up 1").outcome is Outcome.DONE
    own = holding(app_role.url, application="app-worker")
    result = bed.run("migrate up")
    assert result.outcome is Outcome.FAILED and bed.state() == (1, False)
    (shown,) = result.lock_wait.blockers
    assert (shown.pid, shown.application_name, shown.query, shown.own) == (
        own.info.backend_pid, "app-worker", "SELECT * FROM users", True)
    session = shown.session_start.isoformat()
    ended = bed.run(f"migrate unblock {shown.pid} --terminate --session {session} --retry")
    assert ended.signalled and ended.retry.outcome is Outcome.DONE and bed.state() == (2, False)
    own.close()
    bed.write({"3_name.up.sql": "ALTER TABLE users ADD COLUMN name text;"})
    with holding(app_role.admin_url, application="psql-admin") as admin:
        result = bed.run("migrate up")
        (shown,) = result.lock_wait.blockers
        assert shown.superuser and shown.hidden and shown.query is None and shown.client == "unknown"
        refused = bed.run(f"migrate unblock {shown.pid} --terminate")
        assert refused.reason.value == "missing_privilege" and "superuser" in refused.shortfall.missing[0].what
        assert admin.execute("SELECT 1").fetchone() == (1,)  # its session lives on
    assert bed.state() == (2, False)


def test_a_file_run_as_a_whole_is_retried_only_when_nothing_of_it_can_have_run():
    from commands.migrate.lock_waits import nothing_ran
    from commands.sql.sqlscan import scan

    wrapped = scan("BEGIN;\nALTER TABLE users ADD COLUMN a int;\nUPDATE users SET a = 1;\nCOMMIT;\n")
    two = scan("BEGIN;\nALTER TABLE users ADD COLUMN a int;\nCOMMIT;\nBEGIN;\nALTER TABLE users ADD COLUMN b int;\nCOMMIT;\n")
    index = scan("CREATE INDEX CONCURRENTLY users_a ON users (a);")
    assert nothing_ran(wrapped, table_wait=False)        # one transaction, rolled back whole
    assert not nothing_ran(two, table_wait=True)         # the first may have committed
    assert nothing_ran(index, table_wait=True)           # it waited for the table: nothing built yet
    assert not nothing_ran(index, table_wait=False)      # it waited later (old transactions): the index exists
    assert nothing_ran(scan("ALTER TABLE users ADD COLUMN a int;"), table_wait=False)  # dbops' own transaction
