"""Rollback: the plan of options after a bad deploy, the checklist, the app's health.
May import the core and every capability below it (approval, migrate, snapshot...).
"""
