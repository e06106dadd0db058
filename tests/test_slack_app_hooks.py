"""/rollback in Slack with the application's hooks: the approval card says they will be called,
and the result's checklist ticks "application stopped" and "restarted" from their answers."""

from __future__ import annotations

import json

import psycopg

from tests.app_server import HEALTHY, AppServer, Answer
from tests.conftest import wait_for
from tests.slack_bed import SECRET, choose_with_reason, serving, text_of
from tests.slack_fake import FakeSlack
from tests.slack_fake_requests import press_button, sign
from tests.test_slack_rollback import FILES, has_buttons

TOKEN = "dpl-slack-4f2a-secret"


def test_the_approval_card_names_the_hooks_and_the_checklist_ticks_their_answers(make_bed, control_url):
    with AppServer() as app, FakeSlack() as fake:
        app.answers = {"/pause": Answer(200, "scaled to 0"), "/resume": Answer(200, "scaled to 3"),
                       "/health": Answer(200, HEALTHY)}
        bed = make_bed(FILES, control=control_url, channels=["C0INCIDENT"], approvers=["U0BOB"],
                       require_approval=["down", "goto", "force", "restore"], environ={"DEPLOY_TOKEN": TOKEN},
                       app_pause_url=app.url("/pause"), app_resume_url=app.url("/resume?token=in-the-query"),
                       health_url=app.url("/health"), app_hook_headers={"Authorization": "Bearer ${DEPLOY_TOKEN}"})
        app.callbacks = {"/pause": bed.state}
        with serving(bed, fake, control_url) as desk:
            desk.command("up")
            wait_for(lambda: bed.state() == (2, False), what="the migrations")
            desk.command("", command="/rollback")
            plan = fake.wait_for_message("C0INCIDENT", lambda m: "Choose" in text_of(m))
            options = text_of(plan)
            assert "*The application's hooks* (around each option that says so):" in options
            assert options.count("_Pauses the application first and resumes it after, through its hooks") == 2
            restore_dialog = next(b["accessory"]["confirm"]["text"]["text"] for b in plan.blocks
                                  if "confirm" in b.get("accessory", {}))
            assert "dbops pauses the application first (its pause hook) and resumes it after." in restore_dialog
            choose_with_reason(desk, plan, "orders endpoint returns 500s")

            card = fake.wait_for_message("C0INCIDENT", lambda m: "dbops_approve" in text_of(m))
            asked = text_of(card)
            assert f"*The application is paused first:* once the lock is taken, dbops calls `POST {app.url('/pause')}`" \
                in asked
            assert f"dbops calls `POST {app.url('/resume')}?…`, then waits up to 120 s for" in asked
            assert app.calls == []  # nothing is called before a second person approves
            (dialog,) = [e["confirm"] for b in card.blocks if b["type"] == "actions" for e in b["elements"]
                         if "confirm" in e]
            assert dialog["title"]["text"] == "Approve down on test?"
            assert "dbops pauses the application first (its pause hook) and resumes it after." in dialog["text"]["text"]
            approve = press_button(card, "Approve", user_id="U0BOB",
                                   response_url=fake.response_url(user="U0BOB", message_ts=card.ts))
            assert desk.post(approve, sign(SECRET, approve))[0] == 200

            final = fake.wait_for_message("C0INCIDENT", lambda m: m.ts == card.ts and "checklist" in text_of(m)
                                          and not has_buttons(m))
        shown = text_of(final)
        assert f"✅ *Application stopped:* the pause hook `POST {app.url('/pause')}` answered HTTP 200" in shown
        assert (f"✅ *Application restarted:* the resume hook `POST {app.url('/resume')}?…` answered HTTP 200"
                in shown)
        assert app.paths() == ["/pause", "/resume", "/health"]
        assert app.called("/pause")[0].seen == (2, False) and bed.state() == (1, False)
        assert app.called("/resume")[0].headers["Authorization"] == f"Bearer {TOKEN}"
        with psycopg.connect(control_url) as conn:
            (hooks, row), = conn.execute("SELECT checks->'app_hooks', r::text FROM dbops_rollbacks r").fetchall()
        assert (hooks["pause"]["url"], hooks["pause"]["answer"]) == (app.url("/pause"), "HTTP 200")
        assert (hooks["resume"]["url"], hooks["resume"]["answer"]) == (app.url("/resume") + "?…", "HTTP 200")
        sent = json.dumps([c.params for c in fake.calls] + [r.body for r in fake.responses], default=str)
        assert TOKEN not in sent + row and "in-the-query" not in sent + row
