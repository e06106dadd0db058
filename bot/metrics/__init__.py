"""Prometheus metrics of ``dbops serve`` (``GET /metrics``): the only place that imports
prometheus_client. May import commands (the observation seam ``commands.observe`` and the
stores it reads at scrape time) and slack_sdk (to count the Web API's errors); no surface."""
