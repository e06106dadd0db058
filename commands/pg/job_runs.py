"""Scheduled jobs' runs in the control database (contract: ``commands.watch.schedule.JobRuns``).

The claim is one INSERT … ON CONFLICT DO NOTHING on the unique (job, environment,
occurrence, phase): PostgreSQL lets exactly one of several concurrent inserts through and
makes the others wait for it and then skip, so no advisory lock is needed on top. A claim
whose replica died before finishing is taken over after ``ABANDONED_AFTER`` (the row lock of
ON CONFLICT DO UPDATE lets only one replica take it over).
"""

from __future__ import annotations

from datetime import datetime, timedelta


from commands.pg.connect import run_once

ABANDONED_AFTER = timedelta(minutes=30)  # a cleanup deletes files: minutes at most


class PgJobRuns:
    def __init__(self, url: str) -> None:
        self.url = url

    def _rows(self, query: str, params: dict) -> list[tuple]:
        return run_once(self.url, query, params, failure="could not read or write scheduled job runs")

    def claim(self, job: str, env: str, occurrence: datetime, phase: str, *, owner: str, now: datetime,
              caught_up: bool = False) -> bool:
        return bool(self._rows(
            """INSERT INTO dbops_job_runs (job, environment, occurrence, phase, claimed_by, claimed_at, caught_up)
               VALUES (%(job)s, %(env)s, %(occurrence)s, %(phase)s, %(owner)s, %(now)s, %(caught_up)s)
               ON CONFLICT (job, environment, occurrence, phase) DO UPDATE
                   SET claimed_by = EXCLUDED.claimed_by, claimed_at = EXCLUDED.claimed_at
                   WHERE dbops_job_runs.finished_at IS NULL
                     AND dbops_job_runs.claimed_at < EXCLUDED.claimed_at - %(abandoned)s
               RETURNING id""",
            {"job": job, "env": env, "occurrence": occurrence, "phase": phase, "owner": owner, "now": now,
             "caught_up": caught_up, "abandoned": ABANDONED_AFTER}))

    def finish(self, job: str, env: str, occurrence: datetime, phase: str, *, now: datetime, outcome: str) -> None:
        self._rows("""UPDATE dbops_job_runs SET finished_at = %(now)s, outcome = %(outcome)s
                      WHERE job = %(job)s AND environment = %(env)s AND occurrence = %(occurrence)s
                        AND phase = %(phase)s""",
                   {"job": job, "env": env, "occurrence": occurrence, "phase": phase, "now": now,
                    "outcome": outcome})

    def has_history(self, job: str, env: str, *, through: datetime) -> bool:
        return bool(self._rows("""SELECT 1 FROM dbops_job_runs WHERE job = %(job)s AND environment = %(env)s
                                  AND occurrence <= %(through)s LIMIT 1""",
                               {"job": job, "env": env, "through": through}))
