"""The result document on a pod's log: written between marker lines, found again in noise.

The bench prints the document as one compact JSON line between two marker
lines. Pod logs mix stdout and stderr and may carry a timestamp prefix per line
(``kubectl logs --timestamps``); the parser finds the markers anywhere in a
line, takes the JSON from the first ``{`` after any prefix, ignores stray lines
between the markers, and uses the last complete document (a restarted
container prints a second one).
"""

from __future__ import annotations

import json
from typing import Any

BEGIN_MARKER = "----- energysched-bench result begin -----"
END_MARKER = "----- energysched-bench result end -----"
SCHEMA = "energysched.bench/v1"


class ResultNotFound(ValueError):
    """The log holds no complete, parseable result document."""


def format_result(doc: dict[str, Any]) -> str:
    """The marked block to print (ends with a newline)."""
    body = json.dumps(doc, separators=(",", ":"), sort_keys=False, allow_nan=False)
    return f"{BEGIN_MARKER}\n{body}\n{END_MARKER}\n"


def _document(line: str) -> dict[str, Any] | None:
    """The result document on this line (after any prefix such as a timestamp), or None."""
    start = line.find("{")
    while start >= 0:
        try:
            doc = json.loads(line[start:])
        except json.JSONDecodeError:
            start = line.find("{", start + 1)
            continue
        if isinstance(doc, dict) and doc.get("schema") == SCHEMA:
            return doc
        return None
    return None


def extract_results(log_text: str) -> list[dict[str, Any]]:
    """Every complete result document in the log, in order.

    Between a begin and an end marker, the line holding a document of our
    schema is taken; stray lines there (warnings on stderr) are ignored.
    """
    docs: list[dict[str, Any]] = []
    found: dict[str, Any] | None = None
    inside = False
    for line in log_text.splitlines():
        if BEGIN_MARKER in line:
            inside, found = True, None
        elif END_MARKER in line:
            if inside and found is not None:
                docs.append(found)
            inside, found = False, None
        elif inside and found is None:
            found = _document(line)
    return docs


def extract_result(log_text: str) -> dict[str, Any]:
    """The last complete result document in a pod's log."""
    docs = extract_results(log_text)
    if not docs:
        has_begin = BEGIN_MARKER in log_text
        raise ResultNotFound(
            "no complete energysched-bench result in the log"
            + (
                " (a begin marker without a parseable document before the end marker: "
                "the run was cut short or the JSON is damaged)"
                if has_begin
                else " (no begin marker: the bench did not finish, or ran without --json)"
            )
        )
    return docs[-1]
