"""The reference for the polling benchmarks: plain ``twisted.web`` serving fixed bytes.

Each ``--document URLPATH=FILE`` is served from memory with the daemon's
headers (``application/json``, ``no-cache``, CORS); ``--etag URLPATH=TAG``
adds an ETag to that document and answers ``If-None-Match`` with 304. No
access log. Prints ``serving at http://127.0.0.1:PORT/`` once listening.
Started by ``bench/run.py``; by hand::

    python bench/bare_web.py --document /api/v1/state=state.json \\
        --document /mitel_data.json=legacy.json --etag '/mitel_data.json="42"'
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from twisted.internet import reactor as _reactor
from twisted.web import http
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

reactor: Any = _reactor


class Fixed(Resource):
    """One document, the same bytes every time."""

    isLeaf = True

    def __init__(self, body: bytes, etag: bytes | None) -> None:
        super().__init__()
        self._body = body
        self._etag = etag

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"access-control-allow-origin", b"*")
        request.setHeader(b"access-control-expose-headers", b"ETag")
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-cache")
        if self._etag is not None and request.setETag(self._etag) == http.CACHED:
            return b""
        return self._body


class QuietSite(Site):
    """No access log, as the daemon without ``--access-log``."""

    noisy = False

    def log(self, request: http.Request) -> None:
        pass


def pairs(values: list[str], what: str) -> dict[str, str]:
    out = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key.startswith("/"):
            raise SystemExit(f"{what} wants URLPATH=VALUE, not {value!r}")
        out[key] = rest
    return out


def build(documents: dict[str, str], etags: dict[str, str]) -> Resource:
    root = Resource()
    for path, file in documents.items():
        with open(file, "rb") as f:
            body = f.read()
        etag = etags.get(path)
        *folders, leaf = path.strip("/").split("/")
        parent = root
        for folder in folders:
            child = parent.children.get(folder.encode())
            if child is None:
                child = Resource()
                parent.putChild(folder.encode(), child)
            parent = child
        parent.putChild(leaf.encode(), Fixed(body, etag.encode() if etag else None))
    return root


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--document", action="append", default=[], metavar="URLPATH=FILE")
    parser.add_argument("--etag", action="append", default=[], metavar="URLPATH=TAG")
    args = parser.parse_args(argv)
    root = build(pairs(args.document, "--document"), pairs(args.etag, "--etag"))
    port = reactor.listenTCP(0, QuietSite(root), interface="127.0.0.1")
    print(f"serving at http://127.0.0.1:{port.getHost().port}/", flush=True)
    reactor.run()


if __name__ == "__main__":
    main(sys.argv[1:])
