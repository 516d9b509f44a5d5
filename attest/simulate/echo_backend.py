"""A stand-in inference backend for tests and the demo: it answers every request with what it
received (issue 13; the node gateway's ``[gateway] upstream``).

Any method, any path: ``200``, the request's content as the body with the request's
``Content-Type`` (``application/octet-stream`` when none), and ``x-echo-method`` /
``x-echo-path`` naming what it was asked. It keeps and logs nothing. Run one with
``python -m attest.simulate.echo_backend --listen 127.0.0.1:8081`` (plain HTTP, meant for the
loopback interface next to a simulated agent).
"""

from __future__ import annotations

import argparse

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

__all__ = ["create_echo_app"]

MAX_ECHO = 16 * 1024 * 1024
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def create_echo_app() -> Starlette:
    async def echo(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_ECHO:
            return Response(b"too large\n", status_code=413, media_type="text/plain")
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return Response(body, media_type=request.headers.get("content-type",
                                                             "application/octet-stream"),
                        headers={"x-echo-method": request.method, "x-echo-path": path})

    return Starlette(routes=[Route("/{path:path}", echo, methods=_METHODS)])


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:8081", help="HOST:PORT")
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    uvicorn.run(create_echo_app(), host=host, port=int(port), log_level="warning",
                access_log=False)


if __name__ == "__main__":
    main()
