"""The Slack surface: the Bolt app, listeners, HTTP and Socket Mode, progress messages.
May import bot.slack.blocks, bot.logs, commands (and Slack's SDK).
"""
