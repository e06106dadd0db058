"""The dbops command line: argument handling, --help, exit codes and JSON, who a shell user is.
May import bot.terminal (results are shown as the console shows them), bot.logs and commands.
"""
