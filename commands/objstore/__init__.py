"""Object storage adapters: snapshots in an S3-compatible store (``snapshot_url``).

The only package that imports boto3/botocore; it may import the snapshot domain's names
(``commands.snapshot``), and nothing in the domain imports it: the composition root
installs it behind ``commands.snapshot.store``'s ``ObjectStore`` Protocol.
"""
