import logging

import pytest
from uvicorn.logging import AccessFormatter

from app.core.logging import REDACTED, SecretRedactingFilter, request_api_key


@pytest.fixture
def logger(caplog: pytest.LogCaptureFixture) -> logging.Logger:
    caplog.handler.addFilter(SecretRedactingFilter(["server-secret-123"]))
    caplog.set_level(logging.INFO)
    return logging.getLogger("test.redaction")


def test_the_server_key_is_redacted(
    logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    logger.info("calling with %s", "server-secret-123")

    assert "server-secret-123" not in caplog.text
    assert REDACTED in caplog.text


def test_the_current_request_key_is_redacted(
    logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    token = request_api_key.set("per-request-key-456")
    try:
        logger.info("upstream said: bad key per-request-key-456")
    finally:
        request_api_key.reset(token)

    assert "per-request-key-456" not in caplog.text


def test_key_shaped_strings_are_redacted(
    logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    logger.info("header Authorization: Bearer abcdef123456 and sk-proj-abcdefgh")

    assert "abcdef123456" not in caplog.text
    assert "sk-proj-abcdefgh" not in caplog.text


def test_a_key_in_a_url_query_is_redacted_whatever_its_shape(
    logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    logger.info('127.0.0.1 - "GET /api/health?api_key=proxy-Q7wX2m&x=1 HTTP/1.1" 200')

    assert "proxy-Q7wX2m" not in caplog.text
    assert f"api_key={REDACTED}&x=1" in caplog.text


def test_a_traceback_is_scrubbed_too(
    logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    try:
        raise ValueError("refused server-secret-123 and sk-proj-abcdefgh")
    except ValueError:
        logger.exception("upstream call failed")

    assert "ValueError: refused" in caplog.text
    assert "server-secret-123" not in caplog.text
    assert "sk-proj-abcdefgh" not in caplog.text


def test_uvicorn_formats_a_scrubbed_access_line() -> None:
    # As uvicorn logs a request: its access formatter unpacks the record's arguments.
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/api/health?api_key=proxy-Q7wX2m", "1.1", 200),
        None,
    )
    SecretRedactingFilter([]).filter(record)

    line = AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s').format(record)

    assert line == f'127.0.0.1:5000 - "GET /api/health?api_key={REDACTED} HTTP/1.1" 200 OK'


def test_an_argument_that_no_longer_fits_its_placeholder_is_scrubbed_in_the_text(
    logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    class Holder:
        def __str__(self) -> str:
            return "holds server-secret-123"

    logger.info("%s and %d", Holder(), 7)

    assert caplog.messages == [f"holds {REDACTED} and 7"]
