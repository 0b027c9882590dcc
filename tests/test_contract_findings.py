# SPDX-License-Identifier: GPL-2.0-only
"""Finding codes are "snake_case, stable, documented" (json-lines.md, ``finding``).

Every finding code the code base can emit (found statically in dissect/ and
analysis/) and every code the bundled captures actually produce must have a
row in docs/findings.md, with a severity the code really uses.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.conftest import ROOT

SEVERITIES = {"error", "warning", "info"}
_CODE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)+$")


def _const(n: ast.AST) -> str | None:
    return n.value if isinstance(n, ast.Constant) and isinstance(n.value, str) else None


def _sevs(n: ast.AST) -> set[str]:
    """Severity constants of an argument: a constant, or both arms of ``a if c else b``."""
    if isinstance(n, ast.IfExp):
        return _sevs(n.body) | _sevs(n.orelse)
    c = _const(n)
    return {c} if c in SEVERITIES else set()


def _helpers(tree: ast.AST) -> dict[str, tuple[int, int | None, set[str]]]:
    """Local finding helpers: functions with a ``code`` parameter that build a finding.

    name -> (position of ``code``, position of the severity parameter or None, severities
    written in the helper's body), positions counted without ``self``.
    """
    out = {}
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        names = [a.arg for a in fn.args.args if a.arg not in ("self", "cls")]
        if "code" not in names:
            continue
        body = ast.dump(fn)
        if "Finding" not in body and "'finding'" not in body:
            continue
        sev_pos = next((i for i, n in enumerate(names) if n in ("sev", "severity")), None)
        sevs = {n.value for n in ast.walk(fn) if isinstance(n, ast.Constant) and n.value in SEVERITIES}
        out[fn.name] = (names.index("code"), sev_pos, sevs)
    return out


def _func_name(call: ast.Call) -> str:
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def extract_codes(*dirs: str) -> dict[str, dict[str, set[str]]]:
    """code -> {"severities": {...}, "modules": {...}} from the source, by four patterns:

    1. a severity constant next to a snake_case constant in any call's arguments or any
       tuple/list (``Finding("error", "code", …)``, ``self._finding("warning", "code", …)``,
       rule tables ``("DP-03", "warning", "code")``);
    2. a call of ``Finding``/``*finding`` whose second positional argument is a snake_case
       constant (severity computed at run time);
    3. a ``{"kind": "finding", …, "code": "…"}`` dict literal;
    4. ``code="…"`` keyword arguments.
    """
    out: dict[str, dict[str, set[str]]] = {}

    def add(code: str, sev: str | None, mod: str) -> None:
        e = out.setdefault(code, {"severities": set(), "modules": set()})
        if sev:
            e["severities"].add(sev)
        e["modules"].add(mod)

    for d in dirs:
        for p in sorted((ROOT / d).rglob("*.py")):
            if "__pycache__" in p.parts:
                continue
            mod = str(p.relative_to(ROOT))
            tree = ast.parse(p.read_text(encoding="utf-8"), mod)
            helpers = _helpers(tree)
            for node in ast.walk(tree):
                seqs = []
                if isinstance(node, ast.Call):
                    seqs.append(node.args)
                    name = _func_name(node)
                    if (name == "Finding" or name.lower().endswith("finding")) and len(node.args) >= 2:
                        c = _const(node.args[1])
                        if c and _CODE.match(c):
                            sevs = _sevs(node.args[0])
                            for sev in sevs or {None}:
                                add(c, sev, mod)
                    if name in helpers:
                        cpos, spos, body_sevs = helpers[name]
                        c = _const(node.args[cpos]) if len(node.args) > cpos else None
                        if c and _CODE.match(c):
                            sevs = _sevs(node.args[spos]) if spos is not None and len(node.args) > spos \
                                else (body_sevs if spos is None else set())
                            for sev in sevs or {None}:
                                add(c, sev, mod)
                    for kw in node.keywords:
                        if kw.arg == "code" and _const(kw.value) and _CODE.match(_const(kw.value)):
                            add(_const(kw.value), None, mod)
                if isinstance(node, (ast.Tuple, ast.List)):
                    seqs.append(node.elts)
                if isinstance(node, ast.Dict):
                    keys = [_const(k) if k is not None else None for k in node.keys]
                    if "code" in keys:
                        c = _const(node.values[keys.index("code")])
                        sev = _const(node.values[keys.index("severity")]) if "severity" in keys else None
                        if c and _CODE.match(c):
                            add(c, sev if sev in SEVERITIES else None, mod)
                for seq in seqs:
                    vals = [_const(n) for n in seq]
                    for i, v in enumerate(vals):
                        if v in SEVERITIES:
                            for j in (i + 1, i - 1):
                                if 0 <= j < len(vals) and vals[j] and _CODE.match(vals[j]):
                                    add(vals[j], v, mod)
    return out


def documented_codes() -> dict[str, str]:
    """code -> the severity column of its row in docs/findings.md."""
    doc = ROOT / "docs" / "findings.md"
    rows = {}
    for line in doc.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\|\s*`([a-z][a-z0-9_]*)`\s*\|\s*([^|]*)\|", line)
        if m:
            rows[m.group(1)] = m.group(2).strip()
    return rows


STATIC = extract_codes("dissect", "analysis")


def test_extractor_finds_the_codes_of_every_family() -> None:
    assert len(STATIC) > 150
    # one well-known code per family, with the severity its module gives it
    for code, sev, mod in [("vfio_truncated_payload", "error", "dissect/vfio/stream.py"),
                           ("part_order", "error", "dissect/virtio/validate.py"),
                           ("tcp_gap", "error", "dissect/capture/tcp.py"),
                           ("lost_events", "warning", "dissect/ftrace/ring.py"),
                           ("internal_error", "error", "analysis/cli/internal.py")]:
        assert sev in STATIC[code]["severities"] and mod in STATIC[code]["modules"], code


def test_every_code_in_the_source_is_documented() -> None:
    docs = documented_codes()
    missing = sorted(set(STATIC) - set(docs))
    assert not missing, f"finding codes without a row in docs/findings.md: {missing}"


def test_documented_severities_match_the_source() -> None:
    docs = documented_codes()
    wrong = {}
    for code, e in STATIC.items():
        if code in docs and e["severities"]:
            doc_sev = set(re.findall(r"error|warning|info", docs[code]))
            if not e["severities"] <= doc_sev:
                wrong[code] = (sorted(e["severities"]), docs[code])
    assert not wrong, wrong


def test_findings_doc_has_no_stale_rows() -> None:
    """A documented code that nothing emits any more is stale (dynamic codes excepted)."""
    stale = sorted(set(documented_codes()) - set(STATIC))
    assert not stale, f"docs/findings.md rows whose code is not in the source: {stale}"


# The codes the bundled captures actually emit are checked at the end of
# tests/test_contract_jsonl.py, where every capture has already been decoded once.
