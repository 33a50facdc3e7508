"""Live insights: a small HTTP API and an auto-refreshing page over the stream processor's Redis sinks.

GET /            the page (polls the API every 2 s)
GET /api/sensors latest 10 s and 1 min aggregates per sensor
GET /api/anomalies?limit=N  most recent anomalies, newest first
GET /api/stats   the processor's counters summed over partitions
GET /healthz, /readyz (Redis ping)
When a token is configured, /api/* needs `Authorization: Bearer <token>`; the page reads the token from the URL
fragment (`/#token=...`), which browsers never send to the server, so it stays out of access logs.
"""

from __future__ import annotations

import hmac
from typing import Any

import orjson
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse

__all__ = ["create_app", "read_anomalies", "read_latest", "read_stats"]


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def read_latest(client: Any, prefix: str, limit: int = 500) -> list[dict[str, Any]]:
    out = []
    start = len(prefix) + len(":latest:")
    for key in client.scan_iter(match=f"{prefix}:latest:*", count=1000):
        fields = {_text(k): _text(v) for k, v in client.hgetall(key).items()}
        row: dict[str, Any] = {"sensor_id": _text(key)[start:]}
        for k, v in fields.items():
            row[k] = int(v) if k.endswith(("_ms", "_count")) else float(v)
        out.append(row)
        if len(out) >= limit:
            break
    return sorted(out, key=lambda r: r["sensor_id"])


def read_anomalies(client: Any, prefix: str, limit: int = 50) -> list[dict[str, Any]]:
    rows = []
    for entry_id, fields in client.xrevrange(f"{prefix}:anomalies", count=limit):
        row: dict[str, Any] = {_text(k): _text(v) for k, v in fields.items()}
        row["written_ms"] = int(_text(entry_id).split("-")[0])
        for k in ("ts",):
            row[k] = int(row[k])
        for k in ("value", "score", "median"):
            row[k] = float(row[k])
        rows.append(row)
    return rows


def read_stats(client: Any, prefix: str) -> dict[str, Any]:
    totals: dict[str, int] = {}
    groups: dict[str, dict[str, dict[str, int]]] = {}
    for key in client.scan_iter(match=f"{prefix}:counters:*", count=100):
        group = _text(key).rsplit(":", 1)[-1]
        for field, blob in client.hgetall(key).items():
            counters = orjson.loads(blob)
            groups.setdefault(group, {})[_text(field)] = counters
            for k, v in counters.items():
                totals[k] = totals.get(k, 0) + int(v)
    return {"totals": totals, "partitions": groups}


def create_app(client: Any, prefix: str, token: str | None = None) -> FastAPI:
    app = FastAPI(title="Slipway live sensor insights", docs_url=None, redoc_url=None, openapi_url=None)

    def check(request: Request) -> None:
        if token is None:
            return
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer ") or not hmac.compare_digest(header[7:].encode(), token.encode()):
            raise HTTPException(status_code=401, detail="missing or wrong bearer token")

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return PAGE

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        try:
            client.ping()
        except Exception as e:
            return JSONResponse({"status": "redis unreachable", "error": type(e).__name__}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/api/sensors")
    def sensors(request: Request) -> list[dict[str, Any]]:
        check(request)
        return read_latest(client, prefix)

    @app.get("/api/anomalies")
    def anomalies(request: Request, limit: int = Query(50, ge=1, le=1000)) -> list[dict[str, Any]]:
        check(request)
        return read_anomalies(client, prefix, limit)

    @app.get("/api/stats")
    def stats(request: Request) -> dict[str, Any]:
        check(request)
        return read_stats(client, prefix)

    return app


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Slipway live sensors</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
table{border-collapse:collapse;margin-bottom:1.5rem}
td,th{padding:.25rem .6rem;border-bottom:1px solid #ddd;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}.bad{color:#b00020}#status{color:#666}
</style></head><body>
<h1>Live sensors</h1><p id="status">loading...</p><p id="stats"></p>
<h2>Latest windows</h2>
<table id="sensors"><thead><tr><th>sensor</th><th>10 s end (UTC)</th><th>count</th><th>mean</th><th>min</th>
<th>max</th><th>std</th><th>1 min mean</th><th>1 min std</th></tr></thead><tbody></tbody></table>
<h2>Recent anomalies</h2>
<table id="anomalies"><thead><tr><th>sensor</th><th>event time (UTC)</th><th>value</th><th>score</th>
<th>reason</th></tr></thead><tbody></tbody></table>
<script>
const token = new URLSearchParams(location.hash.slice(1)).get("token");
const headers = token ? {Authorization: "Bearer " + token} : {};
const fmt = (x) => (x === undefined ? "" : Number(x).toFixed(3));
const when = (ms) => (ms ? new Date(ms).toISOString().replace("T", " ").slice(0, 19) : "");
function fill(id, rows) {
  const body = document.querySelector(id + " tbody");
  body.replaceChildren(...rows.map((cells) => {
    const tr = document.createElement("tr");
    for (const c of cells) { const td = document.createElement("td"); td.textContent = c; tr.appendChild(td); }
    return tr;
  }));
}
async function refresh() {
  try {
    const get = (p) => fetch(p, {headers}).then((r) => {
      if (!r.ok) throw new Error(p + ": " + r.status);
      return r.json();
    });
    const [sensors, anomalies, stats] = await Promise.all(
      [get("api/sensors"), get("api/anomalies?limit=25"), get("api/stats")]);
    fill("#sensors", sensors.map((s) => [s.sensor_id, when(s.t10_end_ms), s.t10_count ?? "", fmt(s.t10_mean),
      fmt(s.t10_min), fmt(s.t10_max), fmt(s.t10_std), fmt(s.h1m_mean), fmt(s.h1m_std)]));
    fill("#anomalies", anomalies.map((a) => [a.sensor_id, when(a.ts), fmt(a.value), fmt(a.score), a.reason]));
    document.getElementById("stats").textContent =
      Object.entries(stats.totals).map(([k, v]) => k + ": " + v).join("  ");
    document.getElementById("status").textContent = "updated " + new Date().toLocaleTimeString();
    document.getElementById("status").className = "";
  } catch (e) {
    document.getElementById("status").textContent = "error: " + e.message;
    document.getElementById("status").className = "bad";
  }
}
refresh(); setInterval(refresh, 2000);
</script></body></html>
"""
