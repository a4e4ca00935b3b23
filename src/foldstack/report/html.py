"""HTML of the report: tables and pages, self-contained (inline CSS and a few lines of vanilla JS, no external
asset), so a page opens from disk offline. Every table cell carries the CSV's value in `data-v` (the displayed
text is rounded): the sort uses it, and it is what the CSV next to the page holds."""
import math
from html import escape

import numpy as np
import pandas as pd
from pandas.api.types import is_numeric_dtype

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #1f2328;
       background: #f6f8fa; }
header { background: #24292f; color: #fff; padding: 14px 28px; }
header h1 { margin: 0; font-size: 20px; font-weight: 600; }
header a { color: #9ecbff; }
header .sub { color: #c9d1d9; font-size: 13px; margin-top: 4px; }
main { padding: 4px 20px 40px; }
section { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: 6px 14px 14px;
          margin: 16px 0; overflow-x: auto; }
h2 { font-size: 17px; margin: 10px 0 8px; }
p.note { color: #57606a; font-size: 13px; margin: 4px 0 10px; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0; }
th, td { border-bottom: 1px solid #d8dee4; padding: 4px 7px; text-align: left; vertical-align: top;
         white-space: nowrap; }
th { background: #eef1f4; position: sticky; top: 0; white-space: nowrap; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th:hover { background: #dde3ea; }
th[aria-sort="ascending"]::after { content: " \\25B2"; font-size: 9px; }
th[aria-sort="descending"]::after { content: " \\25BC"; font-size: 9px; }
th.num { text-align: right; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.diff { font-size: 12px; line-height: 1.3; color: #57606a; white-space: normal; min-width: 16em; max-width: 26em;
          overflow-wrap: anywhere; }
tbody tr:nth-child(even) { background: #f9fafb; }
tr.submitted { background: #fff4cc !important; font-weight: 600; }
.badge { display: inline-block; background: #bf8700; color: #fff; border-radius: 10px; padding: 0 8px;
         font-size: 12px; font-weight: 600; }
figure { display: inline-block; margin: 8px 18px 8px 0; vertical-align: top; }
.row { display: flex; flex-wrap: wrap; gap: 8px 28px; align-items: flex-start; }
.row h3 { font-size: 13px; margin: 8px 0 0; color: #57606a; }
figure img { max-width: 100%; border: 1px solid #d8dee4; }
figcaption { font-size: 12px; color: #57606a; }
.grid { display: flex; flex-wrap: wrap; gap: 10px; }
.grid figure { margin: 0; width: 132px; background: #f6f8fa; border: 1px solid #d8dee4; border-radius: 4px;
               padding: 6px; text-align: center; }
.grid img { width: 112px; height: 112px; object-fit: contain; image-rendering: pixelated; border: 0;
            background: #fff; }
.grid figcaption { text-align: left; line-height: 1.3; word-break: break-word; }
.true { color: #1a7f37; } .pred { color: #cf222e; }
a.csv { font-size: 12px; margin-left: 8px; }
"""

# Click a header to sort by it (again: the other way); empty cells stay last. index.html#sort=-cv sorts on load
# (the tests use it to run this code in a browser).
JS = """
function sortTable(table, col, dir) {
  var rows = Array.from(table.tBodies[0].rows), sign = dir === "ascending" ? 1 : -1;
  var value = function (row) { return row.cells[col].dataset.v; };
  rows.sort(function (a, b) {
    var x = value(a), y = value(b);
    if (x === "" || y === "") { return (x === "") - (y === ""); }
    var nx = Number(x), ny = Number(y);
    return sign * (isNaN(nx) || isNaN(ny) ? x.localeCompare(y) : nx - ny);
  });
  rows.forEach(function (row) { table.tBodies[0].appendChild(row); });
  Array.from(table.tHead.rows[0].cells).forEach(function (th, i) {
    if (i === col) { th.setAttribute("aria-sort", dir); } else { th.removeAttribute("aria-sort"); }
  });
}
document.querySelectorAll("table.sortable").forEach(function (table) {
  Array.from(table.tHead.rows[0].cells).forEach(function (th, col) {
    th.addEventListener("click", function () {
      sortTable(table, col, th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending");
    });
  });
});
var wanted = /[#&]sort=(-?)([\\w.]+)/.exec(location.hash);
if (wanted) {
  var th = document.querySelector("table.sortable th[data-col='" + wanted[2] + "']");
  if (th) { sortTable(th.closest("table"), th.cellIndex, wanted[1] ? "descending" : "ascending"); }
}
"""


def is_missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def raw(value) -> str:
    """The cell's value as the CSV writes it (full precision), "" when missing."""
    if is_missing(value):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return str(value)


def duration(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m" if seconds >= 3600 else (
        f"{seconds // 60}m {seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s")


FORMATS = {"train_s": duration, "params_M": "{:.2f}".format, "images_per_s": "{:.0f}".format,
           "lower": "{:.1f}".format, "upper": "{:.1f}".format}


def shown(column: str, value, formats: dict) -> str:
    if is_missing(value):
        return ""
    fmt = formats.get(column, FORMATS.get(column))
    if fmt is not None:
        return fmt(value)
    if isinstance(value, (float, np.floating)):
        return f"{value:.4f}"
    return str(value)


def table(frame, table_id: str, labels: dict | None = None, formats: dict | None = None, links: dict | None = None,
          row_classes: list | None = None, sortable: bool = True, index: bool = False, titles: dict | None = None) -> str:
    """frame as an HTML table. labels: header text by column (the column's name otherwise, kept in data-col);
    titles: header tooltips; formats: column -> value formatter; links: column -> a list of hrefs (one per row,
    "" for none)."""
    labels, formats, links, titles = labels or {}, formats or {}, links or {}, titles or {}
    if index:
        frame = frame.reset_index()
    columns = [str(c) for c in frame.columns]
    numeric = {str(c) for c in frame.columns if is_numeric_dtype(frame[c])}
    head = "".join(f'<th{" class=num" if c in numeric else ""} data-col="{escape(c)}" '
                   f'title="{escape(titles.get(c, c))}">{escape(labels.get(c, c))}</th>' for c in columns)
    body = []
    for i, row in enumerate(frame.itertuples(index=False)):
        cells = []
        for column, value in zip(columns, row):
            text = escape(shown(column, value, formats))
            if column == "config_diff":  # one key a line
                text = text.replace("; ", "<br>")
            href = links.get(column, [""] * len(frame))[i]
            if href:
                text = f'<a href="{escape(href)}">{text}</a>'
            numeric = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
            css = "num" if numeric else ("diff" if column == "config_diff" else "")
            cls = f' class="{css}"' if css else ""
            cells.append(f'<td{cls} data-v="{escape(raw(value))}">{text}</td>')
        tr_class = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        body.append(f"<tr{tr_class}>{''.join(cells)}</tr>")
    sort = ' class="sortable"' if sortable else ""
    return (f'<table id="{escape(table_id)}"{sort}><thead><tr>{head}</tr></thead>'
            f'<tbody>\n{chr(10).join(body)}\n</tbody></table>')


def section(title: str, body: str, note: str = "", csv: str | list = "") -> str:
    csvs = [csv] if isinstance(csv, str) and csv else list(csv or [])
    links = "".join(f'<a class="csv" href="{escape(c)}">{escape(c)}</a>' for c in csvs)
    note = f'<p class="note">{note}</p>' if note else ""
    return f"<section><h2>{escape(title)}{links}</h2>{note}{body}</section>"


def row(*parts: str) -> str:
    """Side by side while the page is wide enough."""
    return '<div class="row">' + "".join(f"<div>{part}</div>" for part in parts if part) + "</div>"


def figure(src: str, caption: str, alt: str = "") -> str:
    return (f'<figure><img src="{escape(src)}" alt="{escape(alt or caption)}">'
            f'<figcaption>{escape(caption)}</figcaption></figure>')


def page(title: str, body: str, subtitle: str = "") -> str:
    sub = f'<div class="sub">{subtitle}</div>' if subtitle else ""
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>{CSS}</style></head>\n"
            f"<body><header><h1>{escape(title)}</h1>{sub}</header>\n<main>\n{body}\n</main>\n"
            f"<script>{JS}</script></body></html>\n")
