"""Data Docs that render without a network: GX's pages load Bootstrap, jQuery, bootstrap-table,
Font Awesome and friends from public CDNs, so offline they are unstyled and the index (built by
JavaScript) lists nothing. The same files, vendored from the npm registry with their licences
(`validation/data_docs_vendor/`, see its README), are copied into the site and every page is
rewritten to load them by relative path.

The vendored tree mirrors the URLs (`<host>/<path>`), so a URL maps to a file by its text alone
and a URL with no vendored file is left as it was (and named by `unvendored_urls`).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

VENDOR = Path(__file__).resolve().parent / "data_docs_vendor"
SITE_VENDOR = Path("static") / "vendor"
_URL = re.compile(r"""https?://([A-Za-z0-9.-]+)/([^"'\s)]+)""")
# GX's logo, fetched with a tracking query; the site ships the same image under static/images.
_LOGO_HOST = "great-expectations-web-assets.s3.us-east-2.amazonaws.com"
# Subresource integrity and CORS mode: meaningless for a local file, and a file:// page refuses a
# crossorigin script.
_SRI = re.compile(r"""\s+(integrity|crossorigin)="[^"]*\"""")


def _vendored(host: str, path: str) -> Path | None:
    candidate = VENDOR / host / path
    return candidate if candidate.is_file() else None


def localize_page(html: str, page: Path, site: Path) -> str:
    """The page's vendored CDN URLs replaced by paths relative to the page."""
    base = page.parent

    def local(match: re.Match[str]) -> str:
        host, path = match.group(1), match.group(2)
        if host == _LOGO_HOST:
            images = site / "static" / "images"
            target = images / path.split("?")[0]
            if not target.is_file():  # e.g. the dark variant: the light one stands in
                target = images / "logo-long.png"
            if not target.is_file():
                return match.group(0)
        elif _vendored(host, path) is None:
            return match.group(0)
        else:
            target = site / SITE_VENDOR / host / path
        return Path(os.path.relpath(target, base)).as_posix()

    localized = _URL.sub(local, html)
    if localized == html:
        return html
    return _SRI.sub("", localized)


def localize_site(site: Path, pages: Iterable[Path] | None = None) -> int:
    """Copy the vendored assets into `site` and rewrite its pages (those given, else all);
    returns the number of pages rewritten."""
    shutil.copytree(VENDOR, site / SITE_VENDOR, dirs_exist_ok=True)
    rewritten = 0
    for page in site.rglob("*.html") if pages is None else pages:
        html = page.read_text()
        localized = localize_page(html, page, site)
        if localized != html:
            page.write_text(localized)
            rewritten += 1
    return rewritten


def unvendored_urls(site: Path) -> set[str]:
    """Script, stylesheet and logo URLs the site's pages still load from the network."""
    found: set[str] = set()
    for page in site.rglob("*.html"):
        for match in _URL.finditer(page.read_text()):
            url = match.group(0)
            if match.group(1) == _LOGO_HOST or "/npm/" in url or url.endswith((".js", ".css")):
                found.add(url)
    return found
