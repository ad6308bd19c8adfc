"""Schemathesis checks for Nimbus (loaded by scripts/fuzz through SCHEMATHESIS_HOOKS).

`catalogued_errors` replaces schemathesis's `not_a_server_error`: the contract allows a 5xx only
when it is a catalogued, retryable envelope (e.g. 502 `sandbox.image_pull_failed` for an image no
registry serves), and requires every 4xx and 5xx to be a catalog envelope. The catalog comes from
the server's own `GET /errors`, fetched once.
"""

import json
import os
import urllib.request

import schemathesis

_CATALOG = None


def _catalog():
    global _CATALOG
    if _CATALOG is None:
        with urllib.request.urlopen(os.environ["NIMBUS_FUZZ_URL"] + "/errors", timeout=10) as answer:
            catalog = json.load(answer)
        _CATALOG = {entry["code"]: entry for entry in catalog["codes"]}
    return _CATALOG


@schemathesis.check
def catalogued_errors(ctx, response, case):
    """Every error answer is a catalog envelope; a 5xx only a catalogued retryable one."""
    status = response.status_code
    if status < 400 or status == 560:  # 560: the Convex HTTP protocol's own function failure
        return None
    try:
        error = json.loads(response.content)["error"]
    except (ValueError, KeyError, TypeError):
        raise AssertionError(f"{status} answer is not an error envelope: {response.content[:200]!r}")
    entry = _catalog().get(error.get("code"))
    if entry is None:
        raise AssertionError(f"{status} answer carries an uncatalogued code {error.get('code')!r}")
    if status >= 500 and not error.get("retryable"):
        raise AssertionError(f"{status} {error['code']} is a server error that is not retryable: {error.get('message')}")
    return None


@schemathesis.serializer("application/x-tar")
def archive_bytes(ctx, value):
    """An image archive the fuzzer invents: whatever it generated, as bytes (never a valid tar)."""
    if isinstance(value, bytes):
        return value
    return (value if isinstance(value, str) else json.dumps(value)).encode()


@schemathesis.deserializer("application/x-ndjson")
def ndjson_lines(ctx, response):
    """NDJSON answers are validated line by line: each one must be a JSON value."""
    return [json.loads(line) for line in response.content.splitlines() if line.strip()]


@schemathesis.deserializer("text/markdown", "application/octet-stream")
def raw(ctx, response):
    """Docs pages and file contents carry no schema beyond their media type."""
    return response.content.decode("utf-8", "replace")
