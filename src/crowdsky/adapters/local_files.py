"""Files on this computer that crowdsky renames: one rule for not replacing what is there."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["rename_no_clobber"]


def rename_no_clobber(source: Path, target: Path) -> None:
    """Rename ``source`` to ``target``, refusing to replace ``target``.

    ``os.rename`` would silently replace an existing ``target``; a hard link fails instead. Where
    hard links are not available (some file systems, shares and mounts) the target is checked,
    then renamed.

    Raises
    ------
    FileExistsError
        When ``target`` exists.
    FileNotFoundError
        When ``source`` does not.
    """
    try:
        os.link(source, target)
    except (FileNotFoundError, FileExistsError):
        raise
    except OSError:
        if target.exists():
            raise FileExistsError(str(target)) from None
        os.rename(source, target)
        return
    source.unlink()
