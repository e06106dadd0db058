"""The console: Slack's surface run locally against a fake Slack, shown as terminal text.
May import bot.slack, bot.terminal, bot.logs and commands.
"""
