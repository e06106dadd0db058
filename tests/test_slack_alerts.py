"""Dirty-state alerts in Slack: the alert with the recovery options, reminders and the
resolved message in its thread, and an alert's button leading to an approval request."""

from __future__ import annotations

import psycopg

from tests.slack_bed import SECRET, choose_with_reason, serving, text_of
from tests.slack_fake import FakeSlack
from tests.slack_fake_requests import press_button, sign

FILES = {
    "1_users.up.sql": "CREATE TABLE users (id bigint PRIMARY KEY, email text);",
    "1_users.down.sql": "DROP TABLE users;",
    "2_email_index.up.sql": "CREATE INDEX CONCURRENTLY users_email ON users (no_such_column);",
    "2_email_index.down.sql": "DROP INDEX CONCURRENTLY IF EXISTS users_email;",
}


def test_a_failed_deploy_migration_alerts_reminds_and_resolves_in_one_thread(make_bed, control_url):
    with FakeSlack() as fake:
        bed = make_bed(FILES, control=control_url, channels=["C0INCIDENT"], approvers=["U0BOB"],
                       require_approval=["down", "force", "restore"])
        with serving(bed, fake, control_url) as desk:
            bed.run("migrate up 1")
            bed.run("migrate up")  # as a deploy script's `migrate up` would: version 2 left dirty
            env = bed.settings.environment("test")

            assert [e.kind for e in desk.bot.watchers.tick(env)] == ["opened"]
            alert = fake.wait_for_message("C0INCIDENT", lambda m: "DIRTY" in text_of(m))
            assert "2_email_index.up.sql" in text_of(alert) and "Choose" in text_of(alert)
            # The index build failed before it made anything: the alert says the schema is version 1.
            assert "The live schema is exactly version 1." in text_of(alert)
            assert desk.bot.watchers.tick(env) == []  # no flood

            with psycopg.connect(control_url, autocommit=True) as conn:  # half an hour passes
                conn.execute("UPDATE dbops_alerts SET notified_at = notified_at - interval '31 minutes', "
                             "opened_at = opened_at - interval '31 minutes'")
            assert [e.kind for e in desk.bot.watchers.tick(env)] == ["reminder"]
            fake.wait_for_message("C0INCIDENT", lambda m: m.thread_ts == alert.ts and "Reminder" in text_of(m))

            # Option 1 of the alert: force version 1, which the schema is, through an approval request
            # (no snapshot restored: nothing written since is lost).
            choose_with_reason(desk, alert, "deploy's index migration failed")
            card = fake.wait_for_message("C0INCIDENT", lambda m: "dbops_approve" in text_of(m))
            assert "--recover" in text_of(card) and bed.state() == (2, True)

            approve = press_button(card, "Approve", user_id="U0BOB",
                                   response_url=fake.response_url(user="U0BOB", message_ts=card.ts))
            assert desk.post(approve, sign(SECRET, approve))[0] == 200
            fake.wait_for_message("C0INCIDENT", lambda m: m.ts == card.ts and "checklist" in text_of(m))
            assert bed.state() == (1, False)

            assert [e.kind for e in desk.bot.watchers.tick(env)] == ["resolved"]
            resolved = fake.wait_for_message("C0INCIDENT", lambda m: m.thread_ts == alert.ts and
                                             "Resolved" in text_of(m))
            assert "U0ALICE" in text_of(resolved) and "rollback" in text_of(resolved)
