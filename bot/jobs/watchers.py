"""The watchers inside ``dbops serve``: APScheduler runs each environment's dirty-state tick
every ``dirty_check_seconds``, and what a tick reports is posted to the environment's first
channel (the alert, with the recovery options of /rollback as buttons) or in the alert's
thread (reminders, the resolved message). The stale-lock and disk watchers tick on the same
interval and post the same way; the drift watcher ticks every minute, checks on each occurrence
of ``drift_check_schedule`` and posts the same way too. The ticks decide; this module only posts."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable, Protocol, Sequence

import structlog
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.blocks import alerts as blocks_alerts, drift_alerts as blocks_drift, locks as blocks_locks
from bot.slack.blocks.render import render, render_error
from bot.slack.blocks.approvals import render_request_final
from bot.slack.blocks.rollback import plan as render_plan
from bot.jobs.drills import DrillSchedules
from bot.jobs.schedules import TICK_SECONDS, CleanupSchedules, DriftSchedules
from commands import grammar as g
from commands.config import EnvironmentSettings, Settings
from commands.identity import Actor
from commands.errors import CommandError
from commands.executor import Executor
from commands.migrations import Alerts, Approvals
from commands.observe import NOBODY, Observer
from commands.watch.results import AlertEvent
from commands.watch.watch import DirtyWatcher

log = structlog.get_logger("dbops.watchers")


class Ticking(Protocol):
    def tick(self, env: EnvironmentSettings) -> list[AlertEvent]:
        """Look at ``env`` once; what is new to say (alerts opened, reminded, resolved)."""
WATCHER = Actor(user="dbops", surface="scheduler")


class AlertPoster:
    def __init__(self, client: WebClient, executor: Executor, alerts: Alerts, settings: Settings,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.client, self.executor, self.alerts, self.settings, self.now = client, executor, alerts, settings, now

    def channel_of(self, env: EnvironmentSettings) -> str | None:
        return env.channels[0] if env.channels else self.settings.alerts_channel

    def post(self, env: EnvironmentSettings, event: AlertEvent) -> None:
        now = self.now()
        alert = event.alert
        try:
            if event.kind == "opened":
                channel = self.channel_of(env)
                if channel is None:
                    log.error("alert.no_channel", env=env.name)
                    return
                message = (blocks_locks.alert(event, now=now) if alert.subject in blocks_locks.SUBJECTS else
                           blocks_drift.alert(event, now=now) if alert.subject in blocks_drift.SUBJECTS else
                           blocks_alerts.alert(event, self._plan(env), now=now, render_plan=render_plan))
                posted = self.client.chat_postMessage(channel=channel, text=message.text, blocks=message.blocks)
                self.alerts.attach_message(alert.id, channel, posted["ts"])
                return
            if alert.subject in blocks_locks.SUBJECTS:
                message = blocks_locks.resolved(event, now=now)
            elif alert.subject in blocks_drift.SUBJECTS:
                message = (blocks_drift.reminder(event, now=now) if event.kind == "reminder"
                           else blocks_drift.resolved(event, now=now))
            else:
                message = (blocks_alerts.reminder(event, now=now) if event.kind == "reminder"
                           else blocks_alerts.resolved(event, now=now))
            channel = alert.channel or self.channel_of(env)
            if channel is not None:
                self.client.chat_postMessage(channel=channel, thread_ts=alert.message_ts, text=message.text,
                                             blocks=message.blocks, reply_broadcast=event.kind == "resolved")
        except (SlackApiError, OSError) as err:
            log.error("alert.post_failed", env=env.name, kind=event.kind, error=str(err))
        except CommandError as err:  # posted, but the control database did not take its ts: the next tick goes on
            log.error("alert.record_failed", env=env.name, kind=event.kind, error=err.message)

    def _plan(self, env: EnvironmentSettings):
        """The recovery options, as /rollback would show them (the watcher asks the executor)."""
        try:
            return self.executor.run(g.Rollback(env=env.name), WATCHER)
        except CommandError as err:
            return render_error(err, command=f"/rollback {env.name}")


class ApprovalSweeper:
    """Requests that ran out of time are closed as such, and their cards stop offering buttons
    (a click would be refused anyway; the card should say so before anyone tries). Which ones
    ran out is the control database's call, by its clock (``Approvals.expire_due``); ``now``
    only words the cards."""

    def __init__(self, client: WebClient, approvals: Approvals,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc), *,
                 observer: Observer = NOBODY) -> None:
        self.client, self.approvals, self.now, self.observer = client, approvals, now, observer

    def sweep(self) -> list[str]:
        try:
            expired = self.approvals.expire_due(None)
        except CommandError as err:
            log.error("approvals.sweep_failed", error=err.message)
            self.observer.watcher_tick(watcher="approval_expiry", environment=None, failed=True)
            return []
        self.observer.watcher_tick(watcher="approval_expiry", environment=None, failed=False)
        now = self.now()
        for request in expired:
            if not (request.channel and request.message_ts):
                continue
            message = render_request_final(request, now=now)
            try:
                self.client.chat_update(channel=request.channel, ts=request.message_ts, text=message.text,
                                        blocks=message.blocks)
            except (SlackApiError, OSError) as err:  # this sweep alone closed it: go on to the next card
                log.error("approvals.sweep_failed", request=request.id, error=str(err))
        return [r.id for r in expired]


class Watchers:
    """The scheduled ticks of every environment; started with ``dbops serve``."""

    def __init__(self, watcher: DirtyWatcher, poster: AlertPoster, settings: Settings,
                 schedules: CleanupSchedules | None = None, also: Sequence[Ticking] = (),
                 sweeper: ApprovalSweeper | None = None, drift: DriftSchedules | None = None,
                 drills: DrillSchedules | None = None, observer: Observer = NOBODY) -> None:
        """``observer`` hears each tick of the dirty, stale-lock and disk watchers, and whether it failed."""
        self.watcher, self.poster, self.settings, self.observer = watcher, poster, settings, observer
        self.drift, self.drills = drift, drills
        self.sweeper = sweeper
        self.also = tuple(also)  # the stale-lock and disk watchers: ticked on the same interval
        self.schedules = schedules
        self.scheduler = BackgroundScheduler(timezone=timezone.utc)

    def tick(self, env: EnvironmentSettings, watcher: Ticking | None = None) -> list[AlertEvent]:
        watcher = watcher or self.watcher
        name = getattr(watcher, "watcher", type(watcher).__name__)
        try:
            events = watcher.tick(env)
        except CommandError as err:  # the database may be down: say so in the log, try next tick
            log.error("watch.failed", env=env.name, error=err.message)
            self.observer.watcher_tick(watcher=name, environment=env.name, failed=True)
            return []
        self.observer.watcher_tick(watcher=name, environment=env.name, failed=False)
        for event in events:
            self.poster.post(env, event)
        return events

    def start(self) -> None:
        for env in self.settings.environments.values():
            self.scheduler.add_job(self.tick, IntervalTrigger(seconds=env.dirty_check_seconds), args=[env],
                                   id=f"dirty-watch:{env.name}", max_instances=1, coalesce=True,
                                   next_run_time=datetime.now(timezone.utc))
            for watcher in self.also:
                self.scheduler.add_job(self.tick, IntervalTrigger(seconds=env.dirty_check_seconds), args=[env, watcher],
                                       id=f"{type(watcher).__name__}:{env.name}", max_instances=1, coalesce=True,
                                       next_run_time=datetime.now(timezone.utc))
        # The cron-scheduled jobs tick every TICK_SECONDS and act on their latest occurrence.
        for prefix, scheduled in (("cleanup", self.schedules), ("drift", self.drift), ("drill", self.drills)):
            for env in scheduled.environments() if scheduled else ():
                self.scheduler.add_job(scheduled.tick, IntervalTrigger(seconds=TICK_SECONDS), args=[env],
                                       id=f"{prefix}:{env.name}", max_instances=1, coalesce=True,
                                       next_run_time=datetime.now(timezone.utc))
        if self.sweeper is not None:
            self.scheduler.add_job(self.sweeper.sweep, IntervalTrigger(seconds=TICK_SECONDS), id="approval-expiry",
                                   max_instances=1, coalesce=True)
        self.scheduler.start()

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)


__all__ = ["AlertPoster", "ApprovalSweeper", "Watchers", "render"]
