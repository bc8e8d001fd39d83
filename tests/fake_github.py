"""A local stand-in for the handful of GitHub REST endpoints `report --post` calls.

It listens on 127.0.0.1 only, keeps state (comments, blobs, trees, commits, refs) and
records every request so tests can assert the exact calls.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class State:
    repo: str = "acme/churn"
    token: str = "ghs_testtoken"
    readonly: bool = False
    comments: list[dict[str, Any]] = field(default_factory=list)
    refs: dict[str, str] = field(default_factory=dict)
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    releases: list[dict[str, Any]] = field(default_factory=list)
    uploads: dict[str, bytes] = field(default_factory=dict)
    dispatches: list[tuple[str, Any]] = field(default_factory=list)
    pulls: list[Any] = field(default_factory=list)
    next_id: int = 100
    page_size: int = 100

    def new_sha(self) -> str:
        self.next_id += 1
        return f"{self.next_id:040x}"


def _handler(state: State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, code: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
            raw = json.dumps(body).encode() if body is not None else b""
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(raw)

        def _handle(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            authorised = self.headers.get("Authorization") == f"Bearer {state.token}"
            if self.path.startswith("/uploads/"):
                state.requests.append((method, self.path, len(raw)))
                if not authorised:  # GitHub refuses an upload without the token
                    self._send(401, {"message": "Bad credentials"})
                    return
                name = self.path.split("name=", 1)[1]
                state.uploads[name] = raw
                self._send(201, {"name": name})
                return
            body = json.loads(raw) if raw else None
            state.requests.append((method, self.path, body))
            if not authorised:
                self._send(401, {"message": "Bad credentials"})
                return
            base = f"/repos/{state.repo}"
            path, _, query = self.path.partition("?")
            m = re.fullmatch(rf"{base}/issues/(\d+)/comments", path)
            if m and method == "GET":
                page = int(dict(q.split("=") for q in query.split("&") if "=" in q).get("page", 1))
                items = state.comments[(page - 1) * state.page_size : page * state.page_size]
                headers = {}
                if page * state.page_size < len(state.comments):
                    headers["Link"] = (
                        f"<http://{self.headers['Host']}{path}?per_page=100&"
                        f'page={page + 1}>; rel="next"'
                    )
                self._send(200, items, headers)
                return
            if m and method == "POST":
                state.next_id += 1
                c = {
                    "id": state.next_id,
                    "body": body["body"],
                    "html_url": f"https://github.test/{state.repo}/pull/{m.group(1)}"
                    f"#issuecomment-{state.next_id}",
                }
                state.comments.append(c)
                self._send(201, c)
                return
            m = re.fullmatch(rf"{base}/issues/comments/(\d+)", path)
            if m and method == "PATCH":
                for c in state.comments:
                    if c["id"] == int(m.group(1)):
                        c["body"] = body["body"]
                        self._send(200, c)
                        return
                self._send(404, {"message": "Not Found"})
                return
            if path == f"{base}/pulls" and method == "POST":
                state.pulls.append(body)
                n = len(state.pulls)
                self._send(
                    201, {"number": n, "html_url": f"https://github.test/{state.repo}/pull/{n}"}
                )
                return
            m = re.fullmatch(rf"{base}/actions/workflows/([^/]+)/dispatches", path)
            if m and method == "POST":
                state.dispatches.append((m.group(1), body))
                self._send(204)
                return
            if path == f"{base}/releases" and method == "POST":
                if any(r["tag_name"] == body["tag_name"] for r in state.releases):
                    self._send(422, {"message": "Validation Failed: already_exists"})
                    return
                rid = len(state.releases) + 1
                rel = {
                    "id": rid,
                    "tag_name": body["tag_name"],
                    "name": body["name"],
                    "body": body["body"],
                    "assets": [],
                    "html_url": f"https://github.test/{state.repo}/releases/{rid}",
                    "upload_url": f"http://{self.headers['Host']}/uploads/repos/{state.repo}"
                    f"/releases/{rid}/assets{{?name,label}}",
                }
                state.releases.append(rel)
                self._send(201, rel)
                return
            if path.startswith(f"{base}/git/") and method != "GET" and state.readonly:
                self._send(403, {"message": "Resource not accessible by integration"})
                return
            if path == f"{base}/git/blobs" and method == "POST":
                sha = state.new_sha()
                state.objects[sha] = {"type": "blob", "content": body["content"]}
                self._send(201, {"sha": sha})
                return
            if path == f"{base}/git/trees" and method == "POST":
                sha = state.new_sha()
                entries = dict(state.objects.get(body.get("base_tree", ""), {}).get("entries", {}))
                entries.update({e["path"]: e["sha"] for e in body["tree"]})
                state.objects[sha] = {"type": "tree", "entries": entries}
                self._send(201, {"sha": sha})
                return
            if path == f"{base}/git/commits" and method == "POST":
                sha = state.new_sha()
                state.objects[sha] = {
                    "type": "commit",
                    "tree": body["tree"],
                    "parents": body["parents"],
                }
                self._send(201, {"sha": sha})
                return
            m = re.fullmatch(rf"{base}/git/commits/([0-9a-f]+)", path)
            if m and method == "GET":
                obj = state.objects[m.group(1)]
                self._send(200, {"sha": m.group(1), "tree": {"sha": obj["tree"]}})
                return
            m = re.fullmatch(rf"{base}/git/ref/heads/(.+)", path)
            if m and method == "GET":
                if m.group(1) in state.refs:
                    self._send(200, {"object": {"sha": state.refs[m.group(1)]}})
                else:
                    self._send(404, {"message": "Not Found"})
                return
            if path == f"{base}/git/refs" and method == "POST":
                state.refs[body["ref"].removeprefix("refs/heads/")] = body["sha"]
                self._send(201, {"ref": body["ref"]})
                return
            m = re.fullmatch(rf"{base}/git/refs/heads/(.+)", path)
            if m and method == "PATCH":
                parents = state.objects[body["sha"]]["parents"]
                if parents != [state.refs.get(m.group(1))]:
                    self._send(422, {"message": "Update is not a fast forward"})
                    return
                state.refs[m.group(1)] = body["sha"]
                self._send(200, {"object": {"sha": body["sha"]}})
                return
            self._send(404, {"message": f"no route {method} {path}"})

        def do_GET(self) -> None:  # noqa: N802
            self._handle("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._handle("POST")

        def do_PATCH(self) -> None:  # noqa: N802
            self._handle("PATCH")

    return Handler


@contextmanager
def serve(state: State) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
