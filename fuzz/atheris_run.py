# SPDX-License-Identifier: GPL-2.0-only
"""One family under atheris (coverage-guided libFuzzer), for long campaigns where it installs.

    python3 -m fuzz.atheris_run FAMILY CORPUS_DIR [libFuzzer options, e.g. -max_total_time=600]

The corpus folder is filled with the family's seeds from ``traces/`` first.
``dissect`` and ``analysis`` are instrumented for coverage.  Findings and the
family's documented exceptions are normal outcomes; any other exception is
re-raised, so libFuzzer stops with a crash and writes the input
(``crash-<sha1>``); ``-timeout=5`` makes a hang a crash too, ``-rss_limit_mb``
a memory blow-up.  Install with the ``fuzz`` extra (``pip install -e '.[fuzz]'``).
"""
from __future__ import annotations

import hashlib
import sys
import tempfile
from pathlib import Path


def main(argv: list[str]) -> None:
    import atheris

    family, corpus, rest = argv[1], Path(argv[2]), argv[3:]
    path = Path(tempfile.mkdtemp(prefix="migtrace-atheris-")) / "input"
    with atheris.instrument_imports(include=["dissect", "analysis"]):
        from fuzz.targets import targets

        t = targets()[family]
        seeds = t.seeds()
        # the targets import their decoders lazily: one run per seed imports (and so
        # instruments) every module the family uses
        for s in seeds:
            try:
                t.run(s, path)
            except t.documented:
                pass
    corpus.mkdir(parents=True, exist_ok=True)
    for s in seeds:
        (corpus / hashlib.sha1(s).hexdigest()).write_bytes(s)

    def one(data: bytes) -> None:
        try:
            t.run(data, path)
        except t.documented:
            pass

    opts = [argv[0], str(corpus), "-timeout=5", "-rss_limit_mb=2560", "-max_len=4194304", *rest]
    atheris.Setup(opts, one)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
