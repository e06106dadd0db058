"""The doctor: checks of configuration, privileges, tools, disk, the app's health.
May import the core, commands.migrate and commands.lock.
"""
