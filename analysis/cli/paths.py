# SPDX-License-Identifier: GPL-2.0-only
"""Why a path named on the command line cannot be read as one capture file.

One wording for every subcommand, so that a gate's log says what is wrong
(issue 11 §5): a missing path, a directory, an empty file (``/dev/null``
included) and anything that is not a regular file are told apart.
"""
from __future__ import annotations

import os
from pathlib import Path


def capture_file_problem(path: Path | str) -> str | None:
    """None when ``path`` is a non-empty regular file, else the reason in a few words."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        return "no such file"
    except NotADirectoryError:
        return "no such file"
    except OSError as e:
        return e.strerror or str(e)
    import stat

    if stat.S_ISDIR(st.st_mode):
        return "is a directory"
    if stat.S_ISREG(st.st_mode):
        return "empty file" if st.st_size == 0 else None
    try:
        if os.path.samefile(p, os.devnull):
            return "empty file"
    except OSError:
        pass
    return "not a regular file"


def make_parent(path: Path | str) -> None:
    """Create the folder an output file goes into, so ``-o out/x.png`` works on a fresh clone.

    Raises OSError (the caller reports it as a usage error) when that is impossible."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
