"""Block Kit renderers by capability: the one place a result is worded for people.
Pure functions of results; may import commands' results and units only.
"""
