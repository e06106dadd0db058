"""Block Kit renderers by capability: the one place a result is worded for people.
Pure functions of results: may import commands' types and words, never Slack's SDK or a surface.
"""
