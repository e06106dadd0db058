"""Scheduled restore drills inside ``dbops serve``: every minute, per environment with a
``drill_schedule``, the latest occurrence goes to the domain's ``DrillJob`` (which drills it
once, whatever the replicas, and checks that a drill passed lately); what it says is posted to
the environment's first channel: the report, or an alert (later failures and the resolution
in its thread). The job decides and claims; this module computes times and posts."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

import structlog
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.jobs.schedules import tick_latest
from bot.slack.blocks import drills as blocks_drills
from bot.slack.blocks.kit import Message
from commands.config import EnvironmentSettings, Settings
from commands.errors import CommandError
from commands.migrations import Alerts
from commands.observe import NOBODY, Observer
from commands.watch.watch_drill import DrillEvent, DrillJob

log = structlog.get_logger("dbops.drills")


class DrillSchedules:
    def __init__(self, job: DrillJob, client: WebClient, alerts: Alerts, settings: Settings,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc), *,
                 observer: Observer = NOBODY) -> None:
        self.job, self.client, self.alerts, self.settings, self.now = job, client, alerts, settings, now
        self.observer = observer

    def environments(self) -> list[EnvironmentSettings]:
        return [env for env in self.settings.environments.values() if env.drill_schedule]

    def tick(self, env: EnvironmentSettings) -> list[DrillEvent]:
        # Asked even before the first occurrence: the job also reminds when no drill passed lately.
        return tick_latest(self.job, env, env.drill_schedule, settings=self.settings, now=self.now(),
                           observer=self.observer, watcher="drill", post=self.post, needs_occurrence=False)

    def post(self, env: EnvironmentSettings, event: DrillEvent) -> None:
        channel = (event.alert.channel if event.alert and event.alert.channel else None) or \
            (env.channels[0] if env.channels else self.settings.alerts_channel)
        if channel is None:
            log.error("drill.no_channel", env=env.name)
            return
        message = self._message(env, event)
        opens = event.kind in ("failed", "fault") or (event.kind == "overdue" and event.alert.reminders == 0)
        thread = None if opens or event.alert is None else event.alert.message_ts
        try:
            posted = self.client.chat_postMessage(channel=channel, text=message.text, blocks=message.blocks,
                                                  thread_ts=thread, reply_broadcast=event.kind == "resolved")
            if opens:
                self.alerts.attach_message(event.alert.id, channel, posted["ts"])
        except (SlackApiError, OSError) as err:
            log.error("drill.post_failed", env=env.name, kind=event.kind, error=str(err))
        except CommandError as err:  # posted, but the control database did not take its ts
            log.error("drill.record_failed", env=env.name, kind=event.kind, error=err.message)

    @staticmethod
    def _message(env: EnvironmentSettings, event: DrillEvent) -> Message:
        if event.kind == "overdue":
            return blocks_drills.drill_overdue(env.name, event.last, env.drill_max_age_days)
        if event.kind in ("failed", "fault"):
            return blocks_drills.drill_alert(env.name, event.result, event.message)
        if event.result is None:  # a fault while an alert is open: said in its thread
            return blocks_drills.drill_fault(env.name, event.message or "")
        return blocks_drills.drilled(event.result)
