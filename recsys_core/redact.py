"""Keeping the warehouse's password out of everything a run writes: step records, logs, reports,
warehouse tables and alerts show a URL with its password replaced by REDACTED."""

from __future__ import annotations

import logging
from urllib.parse import unquote, urlsplit, urlunsplit

REDACTED = "***"


def password_of(url: str | None) -> str | None:
    """The password of a URL (percent-decoded), or None when it has none or is not a URL."""
    if not url or "://" not in url:
        return None
    try:
        password = urlsplit(url).password
    except ValueError:  # a malformed port or netloc: no password can be read from it
        return None
    return unquote(password) if password else None


def redacted(url: str) -> str:
    """The URL with its password replaced by REDACTED; a URL without one is returned as it is."""
    if not password_of(url):
        return url
    parts = urlsplit(url)
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:{REDACTED}@{host}{port}"))


def scrub(text: str, urls: list[str | None]) -> str:
    """`text` with every password of `urls` (as written in the URL and percent-decoded) replaced by
    REDACTED."""
    for url in urls:
        password = password_of(url)
        if not password or not url:
            continue
        raw = (urlsplit(url).password or "") if "://" in url else ""
        for secret in {password, raw} - {""}:
            text = text.replace(secret, REDACTED)
    return text


class ScrubFilter(logging.Filter):
    """A logging filter that scrubs the passwords of `urls` from every record it passes."""

    def __init__(self, urls: list[str | None]):
        super().__init__()
        self.urls = [u for u in urls if password_of(u)]

    def filter(self, record: logging.LogRecord) -> bool:
        if self.urls:
            record.msg = scrub(record.getMessage(), self.urls)
            record.args = None
        return True
