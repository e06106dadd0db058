"""The guide's ``deployment-state.json``: dbops adds ``last_rollback`` to it, as the guide's
``jq '.last_rollback = {…}'`` does by hand, but atomically (temporary file, fsync, rename) and
never over a file it cannot read: a deploy script's state must not be lost to a rollback."""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime
from pathlib import Path

from commands.errors import CommandError


def record_last_rollback(path: Path, entry: dict, *, at: datetime) -> None:
    try:
        state = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except (OSError, ValueError) as err:
        raise CommandError(f"{path} could not be read ({err}); it was left as it was.") from None
    if not isinstance(state, dict):
        raise CommandError(f"{path} does not hold a JSON object; it was left as it was.")
    state["last_rollback"] = {"timestamp": at.isoformat(timespec="seconds"), **entry}
    try:
        fd, temp = tempfile.mkstemp(prefix=".dbops-", suffix=".json", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(state, fh, indent=2)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, path)
    except OSError as err:
        raise CommandError(f"Could not write {path} ({err.strerror}); it was left as it was.") from None
