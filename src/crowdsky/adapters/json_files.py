"""Small JSON files of crowdsky's own (journals), replaced atomically.

A reader never sees half a file: the new text goes to ``<name>.part``, is flushed to disk, then
moved over the old file in one step.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["replace_json"]


def replace_json(path: Path, payload: Any) -> None:
    """Write ``payload`` as JSON to ``path`` atomically; the folder is made if missing.

    Raises
    ------
    OSError
        When it cannot be written; the previous file is left as it was.
    """
    text = json.dumps(payload, indent=1)
    part = path.with_name(path.name + ".part")
    path.parent.mkdir(parents=True, exist_ok=True)
    with part.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(part, path)
