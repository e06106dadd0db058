"""The composition root of ``dbops serve``: settings in, a running bolt App out.

Nothing here runs at import time. ``build_bot`` wires the executor (with the policy and the
audit log), the Slack Web API client (``SLACK_API_URL`` may point it elsewhere, as the tests
do), the listeners, the operation tracker and the metrics (``bot.metrics``: the executor, the
watchers, the approvals store and the Web API client report to them); the transports
(``bot.slack.http``, Socket Mode) only translate requests into ``App.dispatch``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Mapping

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler, ServerErrorRetryHandler

from bot.metrics.approvals import CountedApprovals
from bot.metrics.exporter import Metrics
from bot.slack.blocks.render import render_interrupted
from bot.slack.directory import SlackDirectory
from bot.slack.doctor import SlackAuthCheck
from bot.slack.listeners import Handlers, Observer, register
from bot.slack.operations import OperationTracker
from bot.slack.slack_link import DEFAULT_API_URL
from bot.jobs.drills import DrillSchedules
from bot.jobs.schedules import CleanupSchedules, DriftSchedules
from bot.jobs.watchers import AlertPoster, ApprovalSweeper, Watchers
from bot.stores import use_snapshot_stores
from commands.config import Settings
from commands.errors import ConfigError
from commands.executor import Executor
from commands.context import utc_now
from commands.pg.alerts import PgAlerts
from commands.pg.approvals import PgApprovals
from commands.pg.control import PgAuditLog, PgOperations, PgRollbackLog, prepare_control_database
from commands.pg.database import PgDatabases
from commands.pg.dump import PgDumpSnapshotter
from commands.pg.job_runs import PgJobRuns
from commands.pg.privileges import PgProbe
from commands.policy import Policy
from commands.redact import redact
from commands.results import OperationRecord
from commands.watch.schedule import CleanupJob
from commands.pg.squawk import SquawkLinter
from commands.watch.watch import DirtyWatcher
from commands.watch.watch_drift import DriftJob
from commands.watch.watch_drill import DrillJob
from commands.watch.watch_locks import DiskWatcher, StaleLockWatcher


@dataclass(frozen=True, kw_only=True)
class SlackSettings:
    bot_token: str
    signing_secret: str | None
    app_token: str | None
    api_url: str

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], *, socket_mode: bool) -> "SlackSettings":
        needed = ["SLACK_BOT_TOKEN", "SLACK_APP_TOKEN" if socket_mode else "SLACK_SIGNING_SECRET"]
        missing = [name for name in needed if not environ.get(name)]
        if missing:
            how = "Socket Mode" if socket_mode else "HTTP mode (--http)"
            raise ConfigError(f"{how} needs {' and '.join(missing)} in the environment.")
        for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
            if environ.get(name):
                redact.register(environ[name])
        api_url = environ.get("SLACK_API_URL") or DEFAULT_API_URL
        return cls(bot_token=environ["SLACK_BOT_TOKEN"], signing_secret=environ.get("SLACK_SIGNING_SECRET"),
                   app_token=environ.get("SLACK_APP_TOKEN"), api_url=api_url if api_url.endswith("/") else api_url + "/")


@dataclass
class Bot:
    app: App
    executor: Executor
    client: WebClient
    tracker: OperationTracker | None
    watchers: Watchers | None = None  # started by ``dbops serve`` (tests tick them by hand)
    work: ThreadPoolExecutor | None = None
    control_ready: bool = True  # False: the control database could not be reached at start-up
    metrics: Metrics | None = None  # what GET /metrics serves

    def stop(self) -> None:
        """Stop the watchers, then let every acknowledged command finish: none is dropped."""
        if self.watchers is not None:
            self.watchers.stop()
        if self.work is not None:
            self.work.shutdown(wait=True)
        if self.tracker is not None:
            self.tracker.stop()


def bolt_app(slack: SlackSettings, *, socket_mode: bool, verify_requests: bool, work: ThreadPoolExecutor) -> App:
    """bolt's App with the bot token, its Web API client pointed at ``slack.api_url``.

    bolt builds the client from the token itself: handed a client of ours, it logs "As you gave
    client as well, token will be unused" whenever SLACK_BOT_TOKEN is in the environment, which
    it always is in production. No auth.test here: Slack may be out of reach at start-up, and
    dbops serve then keeps trying (bot.slack.slack_link), which also refuses a token Slack rejects."""
    app = App(token=slack.bot_token, signing_secret=slack.signing_secret, process_before_response=True,
              token_verification_enabled=False, request_verification_enabled=verify_requests and not socket_mode,
              listener_executor=work)
    client = app.client  # each request's client copies its base URL and retry handlers
    client.base_url = slack.api_url
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=2))  # honours Retry-After
    client.retry_handlers.append(ServerErrorRetryHandler(max_retry_count=2))
    return app


def build_bot(settings: Settings, slack: SlackSettings, *, socket_mode: bool = False,
              progress_interval: float = 5.0, application_name: str = "dbops-bot", workers: int = 32,
              verify_requests: bool = True,
              work: ThreadPoolExecutor | None = None, observe: Observer | None = None) -> Bot:
    """``workers``: threads for the work after the ack (operations waiting on the migration lock
    hold one each); acks never wait for them. ``work`` replaces that pool (the console passes
    one it can wait on); ``verify_requests=False`` is for a caller that dispatches in-process,
    where there is no signature to check; ``observe`` hears every command's outcome."""
    # The ack runs in the request's own thread (process_before_response): were it queued with
    # the work, busy workers would delay it past Slack's 3 s, and bolt would then hand the
    # request to the next matching listener and run it twice.
    if work is None:
        work = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dbops-work")
    app = bolt_app(slack, socket_mode=socket_mode, verify_requests=verify_requests, work=work)
    client = app.client
    audit = tracker = approvals = rollbacks = None
    control_ready = True
    databases = PgDatabases(application_name=application_name)
    if settings.control_database_url:
        control_ready = prepare_control_database(settings.control_database_url)
        audit = PgAuditLog(settings.control_database_url)
        approvals = PgApprovals(settings.control_database_url)
    metrics = Metrics(settings, databases, approvals)
    # First: it only counts, and the handlers after it decide whether to retry.
    client.retry_handlers.insert(0, metrics.slack_errors)
    if settings.control_database_url:
        approvals = CountedApprovals(approvals, metrics)
        rollbacks = PgRollbackLog(settings.control_database_url)
        tracker = OperationTracker(PgOperations(settings.control_database_url),
                                   heartbeat_seconds=settings.heartbeat_seconds,
                                   report=lambda record: report_interrupted(client, record))
    use_snapshot_stores()
    executor = Executor(settings, databases, PgDumpSnapshotter(),
                        audit=audit, approvals=approvals, rollback_log=rollbacks, policy=Policy(SlackDirectory(client)),
                        linter=SquawkLinter(), probe=PgProbe(), slack=SlackAuthCheck(client), observer=metrics)
    register(app, Handlers(executor=executor, progress_interval=progress_interval, tracker=tracker, observe=observe))
    watchers = None
    if settings.control_database_url:
        alerts = PgAlerts(settings.control_database_url)
        watcher = DirtyWatcher(PgDatabases(application_name=f"{application_name}-watch"), alerts, audit=audit,
                               clock=utc_now, observer=metrics)
        schedules = CleanupSchedules(CleanupJob(executor, PgJobRuns(settings.control_database_url)), client, settings,
                                     observer=metrics)
        lock_watcher = StaleLockWatcher(PgDatabases(application_name=f"{application_name}-watch"), alerts, audit=audit,
                                        clock=utc_now)
        poster = AlertPoster(client, executor, alerts, settings)
        drift = DriftSchedules(DriftJob(executor, PgJobRuns(settings.control_database_url), alerts), poster, settings,
                               observer=metrics)
        drills = DrillSchedules(DrillJob(executor, PgJobRuns(settings.control_database_url), alerts), client, alerts,
                                settings, observer=metrics)
        watchers = Watchers(watcher, poster, settings, schedules,
                            also=(lock_watcher, DiskWatcher(alerts, settings=settings, clock=utc_now)),
                            sweeper=ApprovalSweeper(client, approvals, observer=metrics), drift=drift, drills=drills,
                            observer=metrics)
    if tracker is not None:
        tracker.run_in_background()
    return Bot(app=app, executor=executor, client=client, tracker=tracker, watchers=watchers, work=work,
               control_ready=control_ready, metrics=metrics)


def report_interrupted(client: WebClient, record: OperationRecord) -> None:
    """Tell the channel, in the operation's thread, that it was cut off and not retried."""
    if record.channel is None:
        return
    message = render_interrupted(record)
    client.chat_postMessage(channel=record.channel, thread_ts=record.message_ts, reply_broadcast=True,
                            text=message.text, blocks=message.blocks)
