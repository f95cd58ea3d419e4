"""Passwords of warehouse URLs never reach what a run writes."""

import logging

import pytest

from recsys_core.redact import REDACTED, ScrubFilter, password_of, redacted, scrub

URL = "postgresql://writer:p%40ss-W0rd@db.example:5432/recsys?sslmode=require"


def test_a_url_shows_everything_but_its_password():
    assert password_of(URL) == "p@ss-W0rd"
    assert redacted(URL) == f"postgresql://writer:{REDACTED}@db.example:5432/recsys?sslmode=require"


@pytest.mark.parametrize(
    "url",
    ["postgresql://writer@db:5432/recsys", "duckdb:///tmp/w.duckdb", "", "not a url"],
)
def test_a_url_without_a_password_is_left_as_it_is(url):
    assert password_of(url) is None
    assert redacted(url) == url


def test_scrub_removes_the_password_as_written_and_decoded():
    text = f"cannot connect to {URL}; password p@ss-W0rd rejected"
    out = scrub(text, [None, "duckdb:///x", URL])
    assert "p@ss-W0rd" not in out and "p%40ss-W0rd" not in out
    assert out.count(REDACTED) == 2 and "db.example" in out


def test_the_scrub_filter_cleans_formatted_log_records(caplog):
    logger = logging.getLogger("test_redact")
    scrubber = ScrubFilter([URL])
    caplog.handler.addFilter(scrubber)
    try:
        logger.warning("connecting to %s", URL)
    finally:
        caplog.handler.removeFilter(scrubber)
    assert "W0rd" not in caplog.text and "db.example" in caplog.text
