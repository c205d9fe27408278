"""The HTML report: one self-contained file a person opens in a browser.

Nothing leaves the page: no script at all, styles inline, charts drawn as inline SVG, and
a Content-Security-Policy that forbids loading anything else. Every text that came from
the input or from Spotify is escaped; links to ``open.spotify.com`` are built only from
ids that are Spotify ids (22 letters and digits), never taken from a cell as they stand.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from ..changes import Change
from .listing import Item, Scan

__all__ = ["CSP", "render_report"]

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'none'"
)
_ID = re.compile(r"[0-9A-Za-z]{22}")
_SHOWN = 500  # review rows shown in the page (the review command writes them all)
_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:.2em .6em;border-bottom:1px solid #eee;
text-align:left;vertical-align:top}td.n{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;gap:1em;flex-wrap:wrap}.card{border:1px solid #ddd;border-radius:6px;
padding:.6em 1em;min-width:8em}.card b{display:block;font-size:1.5em}
.charts{display:flex;gap:2em;flex-wrap:wrap}svg{font:12px system-ui,sans-serif}
.why{color:#8a3b00}.muted{color:#777}pre{white-space:pre-wrap;margin:0;font-size:12px}
"""
_COLOURS = {
    "found": "#2e7d32",
    "not_found": "#9e9e9e",
    "invalid": "#c62828",
    "error": "#e65100",
    "rate_limited": "#6a1b9a",
    "deferred": "#1565c0",
    "pending": "#795548",
}


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def bars(title: str, items: Sequence[tuple[str, int]], colour: str = "#1565c0") -> str:
    """A horizontal bar chart as inline SVG, one bar per (label, count)."""
    if not items:
        return f'<figure><figcaption>{_e(title)}</figcaption><p class="muted">none</p></figure>'
    top = max(count for _, count in items) or 1
    row, label_w, bar_w = 22, 170, 260
    height = row * len(items) + 8
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{label_w + bar_w + 70}" '
        f'height="{height}" aria-label="{_e(title)}">'
    ]
    for n, (label, count) in enumerate(items):
        y = 4 + n * row
        width = max(1, round(bar_w * count / top)) if count else 0
        fill = _COLOURS.get(label, colour)
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end">{_e(label[:28])}</text>'
            f'<rect class="bar" x="{label_w}" y="{y + 2}" width="{width}" height="{row - 6}" '
            f'fill="{fill}"><title>{_e(label)}: {count}</title></rect>'
            f'<text x="{label_w + width + 6}" y="{y + 14}">{count}</text>'
        )
    parts.append("</svg>")
    return f"<figure><figcaption>{_e(title)}</figcaption>{''.join(parts)}</figure>"


def columns(title: str, days: Sequence[tuple[str, int]], quota: int | None) -> str:
    """Requests per day as vertical bars, with the daily quota as a line."""
    if not days:
        return f'<p class="muted">{_e(title)}: no requests in the ledger</p>'
    top = max([count for _, count in days] + [quota or 0]) or 1
    width, height, pad = 640, 180, 30
    step = (width - pad) / len(days)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
        f'height="{height + 40}" aria-label="{_e(title)}">'
    ]
    for n, (day, count) in enumerate(days):
        h = round(height * count / top)
        x = pad + n * step
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{height - h + 10}" width="{max(step - 2, 1):.1f}" '
            f'height="{h}" fill="#1565c0"><title>{_e(day)}: {count}</title></rect>'
        )
        if n == 0 or n == len(days) - 1:
            parts.append(f'<text x="{x:.1f}" y="{height + 28}">{_e(day)}</text>')
    if quota:
        y = height - round(height * quota / top) + 10
        parts.append(
            f'<line x1="{pad}" x2="{width}" y1="{y}" y2="{y}" stroke="#c62828" '
            f'stroke-dasharray="4 3"/><text x="{pad}" y="{y - 4}" fill="#c62828">'
            f"daily quota {quota}</text>"
        )
    parts.append(f'<text x="0" y="20">{top}</text></svg>')
    return f"<figure><figcaption>{_e(title)}</figcaption>{''.join(parts)}</figure>"


def _days(per_day: Mapping[str, int] | None, days: int = 30) -> list[tuple[str, int]]:
    """Each of the last ``days`` UTC days with its requests (0 for a day without)."""
    if not per_day:
        return []
    today = datetime.now(UTC).date()
    span = [(today - timedelta(days=n)).isoformat() for n in range(days - 1, -1, -1)]
    return [(day, int(per_day.get(day, 0))) for day in span]


def _link(track_id: object, text: object) -> str:
    if isinstance(track_id, str) and _ID.fullmatch(track_id):
        url = f"https://open.spotify.com/track/{track_id}"
        return f'<a href="{url}" rel="noreferrer noopener">{_e(text or track_id)}</a>'
    return _e(text)


def _review_table(items: Sequence[Item]) -> str:
    if not items:
        return '<p class="muted">Nothing to review: no conflicts, mismatches or fuzzy matches.</p>'
    head = (
        "<tr><th>ISRC</th><th>why</th><th>input</th><th>Spotify's track</th>"
        "<th>method</th><th>score</th><th>rows</th></tr>"
    )
    body = []
    for item in items[:_SHOWN]:
        r = item.record
        given = " - ".join(str(v) for v in (r["input_title"], r["input_artist"]) if v)
        track = " - ".join(str(v) for v in (r["track"], r["artists"]) if v)
        body.append(
            f"<tr><td>{_e(r['isrc'])}</td><td class=why>{_e(item.reason)}</td>"
            f"<td>{_e(given)}</td><td>{_link(r['chosen_track_id'], track)}</td>"
            f"<td>{_e(r['match_method'])}</td><td class=n>{_e(r['match_score'])}</td>"
            f"<td class=n>{item.rows}</td></tr>"
        )
    more = (
        f'<p class="muted">{len(items) - _SHOWN} more in the review list '
        "(isrc-resolve review OUTPUT).</p>"
        if len(items) > _SHOWN
        else ""
    )
    return f"<table>{head}{''.join(body)}</table>{more}"


def _cards(summary: Mapping[str, Any], scan: Scan) -> str:
    total = scan.rows or 1
    cards = []
    for status in ("found", "not_found", "invalid", "deferred", "error", "rate_limited", "pending"):
        count = scan.statuses.get(status, 0)
        if count or status in ("found", "not_found", "invalid", "deferred"):
            cards.append(
                f'<div class="card">{_e(status)}<b>{count}</b>'
                f'<span class="muted">{100 * count / total:.1f}%</span></div>'
            )
    return f'<div class="cards">{"".join(cards)}</div>'


def _changes_table(changes: Sequence[Change]) -> str:
    """What changed since the cache's answers, gone first (as ``changes.ordered`` puts
    them)."""
    if not changes:
        return '<p class="muted">Nothing changed in the answers asked again this run.</p>'
    head = (
        "<tr><th>change</th><th>ISRC</th><th>store</th><th>before</th><th>now</th>"
        "<th>last seen</th></tr>"
    )
    body = []
    for c in changes[:_SHOWN]:
        before = " - ".join(v for v in (c.before_title, c.before_id) if v)
        after = " - ".join(v for v in (c.after_title, c.after_id) if v)
        body.append(
            f"<tr><td class=why>{_e(c.change.value)}</td><td>{_e(c.isrc)}</td>"
            f"<td>{_e(c.provider)}</td><td>{_e(before)}</td><td>{_e(after)}</td>"
            f"<td>{_e(_when(c.last_seen))}</td></tr>"
        )
    more = (
        f'<p class="muted">{len(changes) - _SHOWN} more in the --changes file.</p>'
        if len(changes) > _SHOWN
        else ""
    )
    return f"<table>{head}{''.join(body)}</table>{more}"


def _when(moment: float | None) -> str:
    if moment is None:
        return ""
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _summary_table(summary: Mapping[str, Any]) -> str:
    keys = (
        "rows", "unique", "cached", "requests", "token_requests", "throttled", "stale",
        "elapsed", "resume_at", "budget_spent", "interrupted", "failed", "exit_code", "version",
    )  # fmt: skip
    rows = "".join(
        f"<tr><th>{_e(k)}</th><td>{_e(summary.get(k))}</td></tr>"
        for k in keys
        if summary.get(k) is not None
    )
    return f"<table>{rows}</table>"


_CHASE_SHOWN = 200


def _availability(scan: Scan) -> str:
    """Where the recordings are: each store's rows by answer, and the ISRCs some store has
    and another lacks (empty when the run asked Spotify alone)."""
    if not scan.stores:
        return ""
    answers = ("found", "not_found", "error", "pending")
    head = "".join(f"<th>{a}</th>" for a in answers)
    body = "".join(
        f"<tr><th>{_e(name)}</th>" + "".join(f"<td>{counts.get(a, 0)}</td>" for a in answers)
        for name, counts in scan.stores.items()
    )
    chase = "".join(
        f"<tr><td>{_e(isrc)}</td><td>{_e(on)}</td><td>{_e(off)}</td></tr>"
        for isrc, (on, off) in list(scan.chase.items())[:_CHASE_SHOWN]
    )
    shown = min(len(scan.chase), _CHASE_SHOWN)
    return f"""<h2>Where the recordings are</h2>
<table><tr><th>store</th>{head}</tr>{body}</table>
<h3>Live on some stores, missing on others ({len(scan.chase)}; {shown} shown)</h3>
<table><tr><th>isrc</th><th>found on</th><th>missing on</th></tr>{chase}</table>"""


def render_report(
    summary: Mapping[str, Any],
    scan: Scan,
    per_day: Mapping[str, int] | None = None,
    daily_quota: int | None = None,
    title: str = "isrc-resolve run",
    changes: Sequence[Change] = (),
) -> str:
    """The report page: ``summary`` (the run's, as ``--summary-json`` has it), ``scan`` (its
    output counted, with the review list), the ledger's requests ``per_day``, what
    ``changes`` the run found."""
    made = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    items = scan.sorted_items()
    statuses = sorted(scan.statuses.items(), key=lambda kv: -kv[1])
    charts = "".join(
        (
            bars("rows by status", statuses),
            bars("found by method", scan.methods.most_common()),
            bars("found in market", scan.markets.most_common(12)),
            bars("match check (input's title and artist)", scan.checks.most_common()),
            bars("cross-check (the other stores)", scan.cross_checks.most_common())
            if scan.cross_checks
            else "",
        )
    )
    budget = columns("requests per day (the ledger, last 30 days)", _days(per_day), daily_quota)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title><style>{_STYLE}</style></head>
<body>
<h1>{_e(title)}</h1>
<p class="muted">made {made}; {scan.rows} rows; exit code {_e(summary.get("exit_code"))}</p>
{_cards(summary, scan)}
<h2>Summary</h2>
{_summary_table(summary)}
<h2>How matches were made</h2>
<div class="charts">{charts}</div>
<p>{scan.conflicts} ISRCs are carried by different recordings (isrc_conflict).</p>
{_availability(scan)}
<h2>What changed ({len(changes)})</h2>
{_changes_table(changes)}
<h2>To review ({len(items)})</h2>
{_review_table(items)}
<h2>Budget</h2>
{budget}
</body></html>
"""
