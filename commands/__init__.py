"""dbops' Slack-free domain: the core (grammar, executor, config, context, policy, results, ports) and one package per capability.
May import nothing of bot, Slack or the scheduler; only commands.pg touches psycopg and PostgreSQL's tools."""
