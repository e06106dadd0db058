"""Background jobs of a running bot: watchers (dirty, locks, disk) and scheduled cleanups.
May import bot.slack.blocks and commands; posts through Slack's client.
"""
