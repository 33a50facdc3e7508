"""Closed-loop HTTP/1.1 load generator on keep-alive connections (run in its own process).

`python benchmarks/loadgen.py --url http://127.0.0.1:8080/v1/models/churn:predict --body body.json -c 16 -d 10`
prints one JSON object: requests, errors (non-200 or broken connections), rps, p50/p90/p99 latency in ms.
Each of `-c` connections sends the next request as soon as the previous response is read.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path
from urllib.parse import urlparse


async def _connection(host: str, port: int, request: bytes, warmup_end: float, end: float, out: dict) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while True:
            start = time.perf_counter()
            if start >= end:
                return
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
                    break
            if length:
                await reader.readexactly(length)
            done = time.perf_counter()
            if start >= warmup_end:
                out["latencies"].append(done - start)
                if status != 200:
                    out["errors"] += 1
                    out["statuses"][status] = out["statuses"].get(status, 0) + 1
    except (ConnectionError, asyncio.IncompleteReadError) as exc:
        out["errors"] += 1
        out["broken"].append(repr(exc))
    finally:
        writer.close()


async def run(url: str, body: bytes, concurrency: int, duration: float, warmup: float, headers: dict[str, str]) -> dict:
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    path = parsed.path + (f"?{parsed.query}" if parsed.query else "")
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Content-Type: application/json"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    out: dict = {"latencies": [], "errors": 0, "statuses": {}, "broken": []}
    t0 = time.perf_counter()
    warmup_end, end = t0 + warmup, t0 + warmup + duration
    await asyncio.gather(*(_connection(host, port, request, warmup_end, end, out) for _ in range(concurrency)))
    lat = sorted(out["latencies"])
    measured = max(time.perf_counter() - warmup_end, 1e-9)

    def pct(q: float) -> float:
        return round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 3) if lat else float("nan")

    return {
        "requests": len(lat),
        "errors": out["errors"],
        "statuses": out["statuses"],
        "broken": out["broken"][:3],
        "rps": round(len(lat) / measured, 1),
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "mean_ms": round(statistics.fmean(lat) * 1000, 3) if lat else float("nan"),
        "concurrency": concurrency,
        "duration_s": duration,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--body", type=Path, required=True, help="file with the request body (JSON)")
    parser.add_argument("-c", "--concurrency", type=int, default=1)
    parser.add_argument("-d", "--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("-H", "--header", action="append", default=[], help="extra header 'Name: value'")
    args = parser.parse_args()
    headers = dict(h.split(":", 1) for h in args.header)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(run(args.url, args.body.read_bytes(), args.concurrency, args.duration, args.warmup, headers))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
