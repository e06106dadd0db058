"""The scheduled cleanup inside ``dbops serve``: every minute, per environment, the occurrences
of ``cleanup_schedule`` around now (in ``[schedule] timezone``) go to the domain's
``CleanupJob``; what it reports is posted to the environment's first channel. The job
decides and claims; this module computes times and posts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Callable, Protocol
from zoneinfo import ZoneInfo

import structlog
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.blocks import schedule as blocks_schedule
from commands.config import EnvironmentSettings, Settings
from commands.errors import CommandError
from commands.observe import NOBODY, Observer
from commands.watch.results import AlertEvent
from commands.watch.schedule import CleanupJob, ScheduleEvent
from commands.watch.watch_drift import DriftJob

log = structlog.get_logger("dbops.schedules")
TICK_SECONDS = 60
_CRONTAB_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# How far back to look for the latest occurrence: short first, so a frequent schedule is cheap.
_LOOK_BACK = (timedelta(hours=1), timedelta(days=1), timedelta(days=8), timedelta(days=32),
              timedelta(days=367), timedelta(days=4 * 367))


def _weekdays(field: str) -> str:
    """A crontab day-of-week field (0 and 7 are Sunday) as APScheduler 3's day names: its
    ``from_crontab`` reads 0 as Monday (its issue 286), which would move a weekly cleanup."""
    if field == "*":
        return field
    days: set[int] = set()
    for item in field.split(","):
        span, _, step = item.partition("/")
        if span == "*":
            low, high = 0, 6
        else:
            low, _, high_text = span.partition("-")
            low = int(low)
            high = int(high_text) if high_text else (7 if step else low)
        days |= {d % 7 for d in range(low, high + 1, int(step or 1))}
    return ",".join(_CRONTAB_DAYS[d] for d in sorted(days))


def crontab_trigger(expression: str, zone: str) -> BaseTrigger:
    """The trigger that fires as cron would: when both day fields are restricted, cron fires
    on either (APScheduler's CronTrigger on both), so that case is an OrTrigger of two."""
    minute, hour, day, month, weekday = expression.split()
    tz = ZoneInfo(zone)
    if day != "*" and weekday != "*":
        return OrTrigger([CronTrigger(minute=minute, hour=hour, day=day, month=month, timezone=tz),
                          CronTrigger(minute=minute, hour=hour, month=month, day_of_week=_weekdays(weekday),
                                      timezone=tz)])
    return CronTrigger(minute=minute, hour=hour, day=day, month=month, day_of_week=_weekdays(weekday), timezone=tz)


def occurrences(trigger: BaseTrigger, now: datetime) -> tuple[datetime | None, datetime | None]:
    """The latest occurrence at or before ``now`` (None if none in four years) and the next after it."""
    upcoming = trigger.get_next_fire_time(None, now + timedelta(microseconds=1))
    for back in _LOOK_BACK:
        latest, fire = None, trigger.get_next_fire_time(None, now - back)
        while fire is not None and fire <= now:
            latest, fire = fire, trigger.get_next_fire_time(None, fire + timedelta(microseconds=1))
        if latest is not None:
            return latest, upcoming
    return None, upcoming


def tick_latest(job, env: EnvironmentSettings, schedule: str, *, settings: Settings, now: datetime,
                observer: Observer, watcher: str, post: Callable, needs_occurrence: bool) -> list:
    """Hand ``schedule``'s latest occurrence to ``job`` (which acts on it once, whatever the
    replicas) and post what it says; a job that ``needs_occurrence`` is not asked before the
    first one. A fault (the control database down) is logged and counted: the next tick tries
    again."""
    latest, _ = occurrences(crontab_trigger(schedule, settings.schedule_timezone), now)
    if latest is None and needs_occurrence:
        return []
    try:
        events = job.tick(env, occurrence=latest, now=now)
    except CommandError as err:
        log.error(f"{watcher}.tick_failed", env=env.name, error=err.message)
        observer.watcher_tick(watcher=watcher, environment=env.name, failed=True)
        return []
    observer.watcher_tick(watcher=watcher, environment=env.name, failed=False)
    for event in events:
        post(env, event)
    return events


class CleanupSchedules:
    """Each environment's scheduled cleanup: ``tick`` runs every ``TICK_SECONDS``."""

    def __init__(self, job: CleanupJob, client: WebClient, settings: Settings,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc), *,
                 observer: Observer = NOBODY) -> None:
        self.job, self.client, self.settings, self.now, self.observer = job, client, settings, now, observer

    def environments(self) -> list[EnvironmentSettings]:
        return [env for env in self.settings.environments.values() if env.snapshots_on]

    def tick(self, env: EnvironmentSettings) -> list[ScheduleEvent]:
        now = self.now()
        latest, upcoming = occurrences(crontab_trigger(env.cleanup_schedule, self.settings.schedule_timezone), now)
        events: list[ScheduleEvent] = []
        failed = False
        try:
            for occurrence in (latest, upcoming):
                if occurrence is not None:
                    events += self.job.tick(env, occurrence=occurrence, now=now)
        except CommandError as err:  # the control database may be down: log it, try next tick
            log.error("schedule.tick_failed", env=env.name, error=err.message)
            failed = True
        self.observer.watcher_tick(watcher="cleanup", environment=env.name, failed=failed)
        for event in events:
            self.post(env, event)
        return events

    def post(self, env: EnvironmentSettings, event: ScheduleEvent) -> None:
        channel = env.channels[0] if env.channels else self.settings.alerts_channel
        if channel is None:
            log.error("schedule.no_channel", env=env.name, kind=event.kind)
            return
        message = blocks_schedule.render_event(event, now=self.now())
        try:
            self.client.chat_postMessage(channel=channel, text=message.text, blocks=message.blocks)
        except (SlackApiError, OSError) as err:
            log.error("schedule.post_failed", env=env.name, kind=event.kind, error=str(err))


class Posting(Protocol):
    def post(self, env: EnvironmentSettings, event: AlertEvent) -> None:
        """Say ``event`` in Slack: an alert in the channel, a reminder or resolution in its thread."""


class DriftSchedules:
    """Each environment's drift check on ``drift_check_schedule``: ``tick`` runs every
    ``TICK_SECONDS`` and hands the latest occurrence to the ``DriftJob`` (which checks it once,
    whatever the replicas); what it reports is posted like the other watchers' alerts. After a
    start, the latest occurrence before it is checked: a missed check is only a late one."""

    def __init__(self, job: DriftJob, poster: Posting, settings: Settings,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc), *,
                 observer: Observer = NOBODY) -> None:
        self.job, self.poster, self.settings, self.now, self.observer = job, poster, settings, now, observer

    def environments(self) -> list[EnvironmentSettings]:
        return [env for env in self.settings.environments.values() if env.drift_check_schedule]

    def tick(self, env: EnvironmentSettings) -> list[AlertEvent]:
        return tick_latest(self.job, env, env.drift_check_schedule, settings=self.settings, now=self.now(),
                           observer=self.observer, watcher="drift", post=self.poster.post, needs_occurrence=True)
