"""GX Data Docs that the district office can open without internet.

GX writes its site's pages with Bootstrap, jQuery, bootstrap-table, Font Awesome and Vega taken
from CDNs, and fills the index's tables from data in a script (bootstrap-table): offline, the
index is blank. The package ships only its own styles, fonts and images (copied into the
site's `static/`). So each page is rewritten once built: the index's tables are filled in as
plain HTML from the same data, every script and every CDN link is dropped, the logo comes from
`static/`, and a small stylesheet (GX's own, plus tables and status icons) stands in for
Bootstrap. A page then needs no script and no network.
"""

from __future__ import annotations

import ast
import html
import re
from pathlib import Path
from typing import Any

from sammachip.reports.files import write_text

# A bootstrap-table filled from data: the table's id, its columns and its rows (Python reprs,
# as GX's templates print them).
_TABLE_DATA = re.compile(
    r"\$\('#(?P<id>[^']+)'\)\.bootstrapTable\(\s*Object\.assign\(\s*\{\s*"
    r"columns: (?P<columns>\[.*?\]),\s*data: (?P<data>\[.*?\]),\s*toolbar:",
    re.DOTALL,
)
_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.DOTALL | re.IGNORECASE)
_REMOTE_LINK = re.compile(r"<link\b[^>]*href=[\"']?(?:https?:)?//[^>]*>", re.IGNORECASE)
_REMOTE_URL_CSS = re.compile(r"url\(\s*['\"]?(?:https?:)?//[^)]*\)", re.IGNORECASE)
_REMOTE_IMG = re.compile(r"(<img\b[^>]*\bsrc=)[\"'](?:https?:)?//[^\"']*[\"']", re.IGNORECASE)

_DONE = "<!-- sammachip: renders offline -->"
OFFLINE_CSS = """
body{font-family:Sarabun,'Noto Sans Thai',Tahoma,Loma,sans-serif;margin:0 16px;color:#1b1b1b}
table{border-collapse:collapse;margin:8px 0;width:100%}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef3f8}
.fa-times::before{content:"✗";color:#c62828;font-style:normal;font-weight:bold}
.fa-check-circle::before,.fa-check::before{content:"✓";color:#2e7d32;font-style:normal}
.cooltip .top,.modal,.navbar-toggler,.fixed-bottom,button{display:none}
.navbar-brand img{visibility:visible;height:40px}
.offline-note{color:#555;font-size:.85rem}
"""


def make_offline(folder: Path) -> list[Path]:
    """Rewrite every page of the Data Docs site in `folder` to render without internet;
    returns the pages rewritten."""
    rewritten = []
    for page in sorted(folder.rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        if _DONE in text:  # a page an earlier build of the same day left as it was
            continue
        depth = len(page.relative_to(folder).parts) - 1
        rewritten.append(write_text(page, offline_page(text, "../" * depth)))
    return rewritten


def offline_page(text: str, to_root: str = "") -> str:
    """One page with its script-filled tables as HTML and nothing fetched from elsewhere;
    `to_root`: the relative path from the page to the site's folder."""
    for found in _TABLE_DATA.finditer(text):
        text = _fill_table(text, found["id"], found["columns"], found["data"])
    text = _SCRIPT.sub("", text)
    text = _REMOTE_LINK.sub("", text)
    text = _REMOTE_URL_CSS.sub("none", text)
    text = _REMOTE_IMG.sub(rf'\1"{to_root}static/images/logo-long.png"', text)
    styles = (
        f'<link rel="stylesheet" href="{to_root}static/styles/data_docs_default_styles.css">'
        f"<style>{OFFLINE_CSS}</style>{_DONE}"
    )
    return text.replace("</head>", styles + "</head>", 1)


def _fill_table(text: str, table_id: str, columns_repr: str, data_repr: str) -> str:
    try:
        columns: list[dict[str, Any]] = ast.literal_eval(columns_repr)
        rows: list[dict[str, Any]] = ast.literal_eval(data_repr)
    except (ValueError, SyntaxError):
        return text  # a layout this code does not know: the page stays as GX wrote it
    shown = [c for c in columns if c.get("visible", True) not in (False, "false")]
    head = "".join(f"<th>{html.escape(str(c.get('title', c['field'])))}</th>" for c in shown)
    body = "".join(_row(r, shown) for r in rows)
    opening = re.search(rf'<table\b[^>]*id="{re.escape(table_id)}"[^>]*>', text)
    if opening is None:
        return text
    end = text.index("</table>", opening.end())
    filled = f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
    return text[: opening.end()] + filled + text[end:]


def _row(row: dict[str, Any], columns: list[dict[str, Any]]) -> str:
    """GX's cells are HTML it rendered itself; a row that links to a page links from its
    first cell (bootstrap-table made the whole row clickable)."""
    cells = [str(row.get(c["field"], "")) for c in columns]
    link = row.get("_table_row_link_path")
    if link and cells and "<a " not in cells[0]:
        cells[0] = f'<a href="{html.escape(str(link), quote=True)}">{cells[0]}</a>'
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"
