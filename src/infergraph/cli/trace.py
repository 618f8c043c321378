"""``infergraph trace URL --data JSON``: send one prediction and show the path it took.

The orchestrator of ``infergraph serve`` keeps a record of its recent predictions for the
dashboard; this command sends one, takes its puid from the answer (``meta.puid``, else the
``Seldon-Puid`` header), fetches ``/dashboard/api/requests/{puid}`` and prints every node
call in order, indented by depth in the graph, with its start and duration, the child each
router chose, and the shadow predictor's run when it has finished. Exit status: 0 the
prediction succeeded; 1 it failed (its trace is still shown), the server cannot be reached
or keeps no record; 2 bad arguments (``--data`` that is not JSON).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

__all__ = ["add_parser", "format_trace", "run"]

OK, FAILED, USAGE = 0, 1, 2
PREDICTIONS = ("/api/v1.0/predictions", "/api/v0.1/predictions")
SHADOW_WAIT_S = 1.0
"""How long to wait for the shadow's run of the request to be recorded, when it has one."""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "trace",
        help="send one prediction to a served graph and show the path it took, node by node",
        description="Send one prediction to an `infergraph serve` orchestrator, then print "
        "the path it took through the graph: every node call in order, indented by depth, "
        "with its start offset and duration, the child each router chose, and the shadow "
        "predictor's run. URL is the orchestrator's base URL (http://localhost:8000, or "
        "under the gateway's /seldon/<namespace>/<deployment> prefix) or its full "
        "predictions URL. The record comes from /dashboard/api/requests/<puid>, so the "
        "server must run with its dashboard on (the default). A node in another process "
        "(--processes) reports no time of its own: its time is the hop as the orchestrator "
        "saw it, wire and node together. Exit status 0: the prediction succeeded; 1: it "
        "failed, or the server cannot be reached or has no record of it; 2: bad arguments.",
        epilog="Example:\n"
        "  infergraph serve examples/dashboard/deployment.yaml --path examples/dashboard &\n"
        '  infergraph trace http://localhost:8000 --data \'{"data": {"ndarray": [[1, 2, 3]]}}\'',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("url", metavar="URL", help="the orchestrator's base or predictions URL")
    p.add_argument(
        "--data",
        "-d",
        required=True,
        metavar="JSON",
        help="the request body: a SeldonMessage as JSON ('@FILE' reads it from FILE)",
    )
    p.add_argument(
        "--header",
        "-H",
        action="append",
        default=[],
        metavar="NAME:VALUE",
        help="a header to send with the prediction (repeatable), e.g. Seldon-Puid:my-id",
    )
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per call (default 30)")
    p.add_argument("--json", action="store_true", help="print the record as JSON instead")
    p.set_defaults(command=run)
    return p


def _urls(url: str) -> tuple[str, str]:
    """(predictions URL, base URL) from either of them."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    path = parts.path.rstrip("/")
    for suffix in PREDICTIONS:
        if path.endswith(suffix):
            path = path[: -len(suffix)]
            base = urlunsplit((parts.scheme, parts.netloc, path, "", ""))
            return urlunsplit((parts.scheme, parts.netloc, path + suffix, parts.query, "")), base
    base = urlunsplit((parts.scheme, parts.netloc, path, "", ""))
    return base + PREDICTIONS[0], base


def _body(value: str) -> Any:
    if value.startswith("@"):
        with open(value[1:], encoding="utf-8") as file:
            value = file.read()
    return json.loads(value)


def _headers(values: list[str]) -> dict[str, str]:
    out = {}
    for value in values:
        name, sep, rest = value.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"--header {value!r}: expected NAME:VALUE")
        out[name.strip()] = rest.strip()
    return out


class TraceError(Exception):
    """What went wrong, said to the user; no traceback."""


class NoRecord(TraceError):
    """The server keeps records, but not of this puid."""


def _error_text(answer: httpx.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return answer.text[:300] or answer.reason_phrase
    status = body.get("status") if isinstance(body, dict) else None
    if isinstance(status, dict) and status.get("info"):
        return str(status["info"])
    if isinstance(body, dict) and body.get("error"):
        return str(body["error"])
    return json.dumps(body)[:300]


def _record(client: httpx.Client, base: str, puid: str) -> dict[str, Any]:
    url = f"{base}/dashboard/api/requests/{quote(puid, safe='')}"
    answer = client.get(url)
    if answer.status_code == 404:
        said = _error_text(answer)
        if said.startswith("Not Found: no endpoint"):
            raise TraceError(
                f"{base} serves no dashboard, so it keeps no record of request {puid}: "
                "is it `infergraph serve` with --no-dashboard (or INFERGRAPH_DASHBOARD=0)?"
            )
        raise NoRecord(f"{base} has no record of request {puid}: {said}")
    if answer.status_code != 200:
        raise TraceError(f"GET {url} answered {answer.status_code}: {_error_text(answer)}")
    try:
        record = answer.json()
    except ValueError:
        raise TraceError(f"GET {url} did not answer JSON: {answer.text[:200]!r}") from None
    if not isinstance(record, dict) or "calls" not in record:
        raise TraceError(f"GET {url} answered JSON that is not a request's record")
    return record


def trace(args: argparse.Namespace) -> tuple[int, dict[str, Any], str]:
    """(exit status, record, what the prediction answered when it failed)."""
    predictions, base = _urls(args.url)
    body = _body(args.data)
    headers = _headers(args.header)
    with httpx.Client(timeout=args.timeout) as client:
        try:
            answer = client.post(predictions, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise TraceError(f"cannot reach {predictions}: {exc}") from None
        puid = answer.headers.get("seldon-puid", "")
        try:
            reply = answer.json()
        except ValueError:
            reply = None
        meta = reply.get("meta") if isinstance(reply, dict) else None
        if isinstance(meta, dict) and meta.get("puid"):
            puid = str(meta["puid"])
        if not puid:
            raise TraceError(
                f"POST {predictions} answered {answer.status_code} with no puid (neither "
                f"meta.puid nor a Seldon-Puid header): {answer.text[:200]!r}; is it an "
                "infergraph orchestrator?"
            )
        failed = "" if answer.status_code == 200 else f"{answer.status_code}: {_error_text(answer)}"
        try:
            record = _record(client, base, puid)
        except NoRecord:
            if failed:  # refused before the graph ran (a body the orchestrator cannot read)
                raise TraceError(
                    f"the prediction failed with {failed}; it never reached the graph, so no "
                    "node was called"
                ) from None
            raise
        deadline = time.monotonic() + SHADOW_WAIT_S
        while (
            record.get("shadow") is None and record.get("shadowed") and time.monotonic() < deadline
        ):
            time.sleep(0.05)
            record = _record(client, base, puid)
    return (FAILED if failed else OK), record, failed


def _rows(record: dict[str, Any], indent: str) -> list[str]:
    routes = record.get("routes") or {}
    width = max(
        [len(indent) + 2 * c.get("depth", 0) + len(c["node"]) for c in record["calls"]] + [4]
    )
    lines = [
        f"{indent}{'node':<{width - len(indent)}}  {'type':<18} {'method':<17} "
        f"{'start ms':>9} {'ms':>9}  note"
    ]
    for call in record["calls"]:
        name = "  " * call.get("depth", 0) + call["node"]
        notes = []
        route = routes.get(call["node"])
        if route is not None and call["method"] == "/route":
            notes.append(f"→ {route['child']} (branch {route['branch']})")
        if call.get("remote"):
            notes.append(f"{call['transport']} hop: wire + node")
        if call["status"] != "200":
            notes.append(f"status {call['status']}")
        lines.append(
            f"{indent}{name:<{width - len(indent)}}  {call['type']:<18} {call['method']:<17} "
            f"{call['start_ms']:>9.3f} {call['ms']:>9.3f}  {'; '.join(notes)}".rstrip()
        )
    return lines


def format_trace(record: dict[str, Any]) -> str:
    """The record as an indented table: one line per node call."""
    lines = [
        f"request {record['puid']}: predictor {record['predictor']}, status {record['status']}, "
        f"{record['ms']:.3f} ms, path {' → '.join(record['path']) or '(no node called)'}"
    ]
    lines += _rows(record, "  ")
    shadow = record.get("shadow")
    if shadow:
        outcome = f", {shadow['outcome']}" if shadow.get("outcome") else ""
        lines.append(
            f"shadow {shadow['predictor']}: status {shadow['status']}, "
            f"{shadow['ms']:.3f} ms{outcome}"
        )
        lines += _rows(shadow, "  ")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        status, record, failed = trace(args)
    except json.JSONDecodeError as exc:
        print(f"infergraph trace: --data is not JSON: {exc}", file=sys.stderr)
        return USAGE
    except (OSError, ValueError) as exc:
        print(f"infergraph trace: {exc}", file=sys.stderr)
        return USAGE
    except TraceError as exc:
        print(f"infergraph trace: {exc}", file=sys.stderr)
        return FAILED
    except httpx.HTTPError as exc:
        print(f"infergraph trace: {args.url}: {exc}", file=sys.stderr)
        return FAILED
    if failed:
        print(f"infergraph trace: the prediction failed with {failed}", file=sys.stderr)
    print(json.dumps(record, indent=2) if args.json else format_trace(record))
    return status
