"""dbops' Slack-free domain: grammar, executor, migrations, snapshots, locks, approvals."""
