"""Schema truth: a database's schema as a comparable value, the comparison of two schemas,
and drift (the live schema against the one its recorded version should have).
May import the core and migrate (the same file reading that `up` uses).
"""
