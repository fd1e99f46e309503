"""A loopback HTTP load client that `bench` and the tests run as a process of its own.

Run as `python loadgen.py` with a JSON request on stdin (url, base64 body, content type, number
of requests, clients, time limit); prints the latencies in milliseconds (null for an error) and
the elapsed seconds as JSON. Standard library only: it starts in milliseconds and never shares
the server's interpreter lock, as no real client does. Each client keeps its connection open
between requests (HTTP/1.1 keep-alive), as `requests.Session`, httpx or a browser would.
"""

from __future__ import annotations

import base64
import concurrent.futures
import http.client
import json
import sys
import threading
import time
import urllib.parse
from typing import Any


def _streamed(response: http.client.HTTPResponse, start: float) -> dict[str, Any]:
    """An OpenAI-style event stream read to its end: when the first text came, the latency,
    and the completion tokens of its usage chunk."""
    first, tokens = None, 0
    for line in iter(response.readline, b""):
        if not line.startswith(b"data: {"):
            continue
        event = json.loads(line[len(b"data: ") :])
        choices = event.get("choices", [])
        if first is None and any(
            choice.get("text") or (choice.get("delta") or {}).get("content") for choice in choices
        ):
            first = (time.perf_counter() - start) * 1000
        if event.get("usage"):
            tokens = event["usage"]["completion_tokens"]
    latency = (time.perf_counter() - start) * 1000
    return {
        "latency_ms": latency,
        "ttft_ms": first if first is not None else latency,
        "tokens": tokens,
    }


def load(
    url: str,
    body: bytes,
    content_type: str,
    requests: int,
    clients: int,
    time_limit_s: float,
    stream: bool = False,
) -> dict[str, Any]:
    """With `stream`, each answer is an event stream, and each result a dict (`_streamed`)."""
    target = urllib.parse.urlsplit(url)
    headers = {"Content-Type": content_type}
    local = threading.local()
    stop_at = time.monotonic() + time_limit_s

    def one(_: int) -> float | dict[str, Any] | str | None:
        if time.monotonic() > stop_at:
            return "skipped"
        start = time.perf_counter()
        try:
            if getattr(local, "connection", None) is None:
                local.connection = http.client.HTTPConnection(target.netloc, timeout=60)
            local.connection.request("POST", target.path, body, headers)
            response = local.connection.getresponse()
            if stream and response.status == 200:
                return _streamed(response, start)
            response.read()
        except (OSError, http.client.HTTPException, ValueError):  # broken: reconnect next time
            local.connection = None
            return None
        if response.status != 200:
            return None
        return (time.perf_counter() - start) * 1000

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        results = [result for result in pool.map(one, range(requests)) if result != "skipped"]
    return {"latencies_ms": results, "seconds": time.perf_counter() - start}


def main() -> None:
    spec = json.load(sys.stdin)
    result = load(
        spec["url"],
        base64.b64decode(spec["body"]),
        spec["content_type"],
        spec["requests"],
        spec["clients"],
        spec["time_limit_s"],
        spec.get("stream", False),
    )
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
