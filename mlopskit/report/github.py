"""Post the report as one sticky pull-request comment through GitHub's REST API.

Reads what GitHub Actions sets: GITHUB_TOKEN, GITHUB_REPOSITORY, GITHUB_EVENT_PATH,
GITHUB_API_URL (and GITHUB_SERVER_URL, GITHUB_SHA). The comment carries a hidden
marker and CML's watermark, so reruns update it in place and ``cml comment update
--watermark-title=mlopskit`` finds the same comment. Plot images are committed to an
orphan branch of the same repository through the Git Data API and linked by URL, so
they render for whoever can read the repository; without write access the report
falls back to tables and says so.
"""

from __future__ import annotations

import base64
import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import RemoteError, UsageError
from .build import Report
from .render import MARKER, image_key, markdown

ASSETS_BRANCH = "mlopskit-assets"
CML_WATERMARK_IMAGE = "https://cml.dev/watermark.png"
DEFAULT_LABEL = "mlopskit"


class HTTPFailure(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


@dataclass(frozen=True)
class Posted:
    action: str  # "created" or "updated"
    url: str
    comment_id: int
    notes: list[str] = field(default_factory=list)


class Client:
    """A minimal GitHub REST client (stdlib only); the token never appears in errors."""

    def __init__(self, api_url: str, token: str) -> None:
        self.api = api_url.rstrip("/")
        self.token = token

    def request(self, method: str, path: str, body: Any = None) -> tuple[Any, dict[str, str]]:
        url = path if path.startswith("http") else f"{self.api}{path}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("Accept", "application/vnd.github+json")
        req.add_header("X-GitHub-Api-Version", "2022-11-28")
        req.add_header("User-Agent", "mlopskit")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw = resp.read()
                headers = {k.lower(): v for k, v in resp.headers.items()}
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:200]
            try:
                detail = str(json.loads(detail).get("message", detail))
            except (ValueError, AttributeError):
                pass
            raise HTTPFailure(exc.code, detail) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RemoteError(
                f"GitHub API at {self.api} unreachable: {reason}",
                "check GITHUB_API_URL and the network",
            ) from None
        return (json.loads(raw) if raw else None), headers

    def paginate(self, path: str) -> list[Any]:
        items: list[Any] = []
        url: str | None = path
        while url:
            page, headers = self.request("GET", url)
            items.extend(page or [])
            m = re.search(r'<([^>]+)>;\s*rel="next"', headers.get("link", ""))
            url = m.group(1) if m else None
        return items


def watermark(sha: str, label: str = DEFAULT_LABEL) -> str:
    """CML's watermark: `cml comment update --watermark-title=LABEL` matches it."""
    title = f"CML watermark {label}".strip()
    for ch in ("_", "*", "[", "<"):
        title = title.replace(ch, "\\" + ch)
    return f'![]({CML_WATERMARK_IMAGE}#{sha} "{title}")'


def _is_ours(body: str, label: str) -> bool:
    if MARKER in body and (label == DEFAULT_LABEL or f"CML watermark {label}" in body):
        return True
    title = re.escape(watermark("0", label).split('"')[1])
    return (
        re.search(rf"!\[\]\({re.escape(CML_WATERMARK_IMAGE)}#[0-9a-fA-F]+ \"{title}\"\)", body)
        is not None
    )


@dataclass(frozen=True)
class Context:
    repository: str
    pr: int
    sha: str
    api_url: str
    server_url: str
    token: str


def _client(env: Mapping[str, str] | None, what: str) -> tuple[Client, str]:
    """A client and OWNER/NAME from the variables GitHub Actions sets."""
    e = os.environ if env is None else env
    token = e.get("GITHUB_TOKEN", "")
    repository = e.get("GITHUB_REPOSITORY", "")
    if not token or not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", repository):
        raise UsageError(f"{what} needs GITHUB_TOKEN and GITHUB_REPOSITORY (OWNER/NAME)")
    return Client(e.get("GITHUB_API_URL", "https://api.github.com"), token), repository


def open_pull_request(
    *, head: str, base: str, title: str, body: str, env: Mapping[str, str] | None = None
) -> str:
    """Open a pull request (CT's pull-request mode); returns its URL."""
    client, repository = _client(env, "opening a pull request")
    try:
        done, _ = client.request(
            "POST",
            f"/repos/{repository}/pulls",
            {"title": title, "head": head, "base": base, "body": body},
        )
    except HTTPFailure as exc:
        raise RemoteError(
            f"GitHub API: could not open the pull request: {exc}",
            "the job needs 'pull-requests: write'",
        ) from None
    return str(done.get("html_url", ""))


def dispatch_workflow(
    workflow: str, *, ref: str, inputs: dict[str, str], env: Mapping[str, str] | None = None
) -> None:
    """Start ``workflow`` (a file name in .github/workflows) on ``ref`` by
    ``workflow_dispatch``: GitHub's documented exception to "events made with
    GITHUB_TOKEN start no workflow"."""
    import urllib.parse

    client, repository = _client(env, "dispatching a workflow")
    path = f"/repos/{repository}/actions/workflows/{urllib.parse.quote(workflow)}/dispatches"
    try:
        client.request("POST", path, {"ref": ref, "inputs": inputs})
    except HTTPFailure as exc:
        raise RemoteError(
            f"GitHub API: could not start {workflow} on {ref}: {exc}",
            f"the job needs 'actions: write', and {workflow} must exist on {ref}",
        ) from None


@dataclass(frozen=True)
class Release:
    url: str
    assets: list[str]
    created: bool


def publish_release(
    *, tag: str, title: str, body: str, files: list[Path], env: Mapping[str, str] | None = None
) -> Release:
    """Create the GitHub release of ``tag`` (or reuse it) and upload ``files`` to it."""
    import mimetypes
    import urllib.parse

    client, repository = _client(env, "publishing a release")
    token = client.token
    base = f"/repos/{repository}/releases"
    created = True
    try:
        try:
            rel, _ = client.request(
                "POST", base, {"tag_name": tag, "name": title, "body": body, "make_latest": "false"}
            )
        except HTTPFailure as exc:
            if exc.status != 422:
                raise
            created = False
            rel, _ = client.request("GET", f"{base}/tags/{urllib.parse.quote(tag, safe='')}")
            client.request("PATCH", f"{base}/{rel['id']}", {"body": body, "name": title})
        have = {a["name"] for a in rel.get("assets", [])}
        upload = str(rel["upload_url"]).split("{", 1)[0]
        uploaded = []
        for f in files:
            if f.name in have:
                continue
            data = f.read_bytes()
            url = f"{upload}?name={urllib.parse.quote(f.name)}"
            req = urllib.request.Request(url, data=data, method="POST")
            req.add_header("Authorization", f"Bearer {token}")
            req.add_header("Accept", "application/vnd.github+json")
            req.add_header(
                "Content-Type", mimetypes.guess_type(f.name)[0] or "application/octet-stream"
            )
            try:
                with urllib.request.urlopen(req, timeout=300) as resp:
                    resp.read()
            except urllib.error.HTTPError as exc:
                raise HTTPFailure(exc.code, f"upload of {f.name} failed") from None
            uploaded.append(f.name)
    except HTTPFailure as exc:
        raise RemoteError(
            f"GitHub API: could not publish the release {tag}: {exc}",
            "the job needs 'contents: write'",
        ) from None
    return Release(str(rel.get("html_url", "")), uploaded, created)


def context(env: Mapping[str, str], pr: int | None = None) -> Context:
    token = env.get("GITHUB_TOKEN", "")
    if not token:
        raise UsageError("GITHUB_TOKEN is not set", "pass it to the step: env: GITHUB_TOKEN: ...")
    repository = env.get("GITHUB_REPOSITORY", "")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", repository):
        raise UsageError(f"GITHUB_REPOSITORY {repository!r} is not OWNER/NAME")
    event: dict[str, Any] = {}
    if env.get("GITHUB_EVENT_PATH"):
        try:
            event = json.loads(Path(env["GITHUB_EVENT_PATH"]).read_text())
        except (OSError, ValueError) as exc:
            raise UsageError(f"GITHUB_EVENT_PATH: cannot read the event: {exc}") from None
    pull = event.get("pull_request") or {}
    number = pr or pull.get("number") or (event.get("issue") or {}).get("number")
    if not isinstance(number, int) or number <= 0:
        raise UsageError(
            "no pull request number in GITHUB_EVENT_PATH", "run on a pull_request event"
        )
    sha = str((pull.get("head") or {}).get("sha") or env.get("GITHUB_SHA") or "0")
    if not re.fullmatch(r"[0-9a-fA-F]{1,64}", sha):
        sha = "0"
    return Context(
        repository,
        number,
        sha,
        env.get("GITHUB_API_URL", "https://api.github.com"),
        env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/"),
        token,
    )


def publish_images(client: Client, ctx: Context, report: Report) -> dict[str, str]:
    """Commit the PNGs to the orphan assets branch; ``{image key: URL}``."""
    files = {
        image_key(p.name, side): data
        for p in report.plots
        for side, data in (("base", p.base_png), ("head", p.head_png))
        if data is not None
    }
    if not files:
        return {}
    repo = f"/repos/{ctx.repository}"
    folder = f"pr-{ctx.pr}/{ctx.sha[:12]}"
    tree = []
    for key, data in files.items():
        blob, _ = client.request(
            "POST",
            f"{repo}/git/blobs",
            {"content": base64.b64encode(data).decode(), "encoding": "base64"},
        )
        tree.append(
            {"path": f"{folder}/{key}", "mode": "100644", "type": "blob", "sha": blob["sha"]}
        )
    for attempt in range(3):
        parent = None
        try:
            ref, _ = client.request("GET", f"{repo}/git/ref/heads/{ASSETS_BRANCH}")
            parent = ref["object"]["sha"]
        except HTTPFailure as exc:
            if exc.status != 404:
                raise
        body: dict[str, Any] = {"tree": tree}
        if parent:
            commit_info, _ = client.request("GET", f"{repo}/git/commits/{parent}")
            body["base_tree"] = commit_info["tree"]["sha"]
        new_tree, _ = client.request("POST", f"{repo}/git/trees", body)
        commit, _ = client.request(
            "POST",
            f"{repo}/git/commits",
            {
                "message": f"mlopskit report images for #{ctx.pr} at {ctx.sha[:12]}",
                "tree": new_tree["sha"],
                "parents": [parent] if parent else [],
            },
        )
        try:
            if parent:
                client.request(
                    "PATCH",
                    f"{repo}/git/refs/heads/{ASSETS_BRANCH}",
                    {"sha": commit["sha"], "force": False},
                )
            else:
                client.request(
                    "POST",
                    f"{repo}/git/refs",
                    {"ref": f"refs/heads/{ASSETS_BRANCH}", "sha": commit["sha"]},
                )
        except HTTPFailure as exc:
            if exc.status == 422 and attempt < 2:  # another run moved the branch: retry on top
                continue
            raise
        return {
            key: f"{ctx.server_url}/{ctx.repository}/raw/{commit['sha']}/{folder}/{key}"
            for key in files
        }
    raise RemoteError(f"could not update the {ASSETS_BRANCH} branch")  # pragma: no cover


def post_report(
    report: Report,
    *,
    env: Mapping[str, str] | None = None,
    pr: int | None = None,
    label: str = DEFAULT_LABEL,
) -> Posted:
    """Create or update the one mlopskit comment on the pull request."""
    ctx = context(os.environ if env is None else env, pr)
    client = Client(ctx.api_url, ctx.token)
    notes: list[str] = []
    images: dict[str, str] | None = None
    fallback = "_Plots are not shown: images could not be published._"
    try:
        images = publish_images(client, ctx, report)
    except HTTPFailure as exc:
        if exc.status in (401, 403, 404):
            notes.append(
                f"Plot images not published ({exc}): the token cannot write to "
                f"{ctx.repository} (needs contents: write); the report shows tables only."
            )
            fallback = (
                "_Plots are not shown: this run's token cannot publish images "
                "(pull requests from forks get a read-only token)._"
            )
        else:
            raise RemoteError(f"GitHub API: {exc}") from None
    body = markdown(
        report,
        images=images,
        plots_fallback=fallback,
        footer="\n" + watermark(ctx.sha, label) + "\n",
    )
    try:
        comments = client.paginate(f"/repos/{ctx.repository}/issues/{ctx.pr}/comments?per_page=100")
        mine = [c for c in comments if _is_ours(str(c.get("body") or ""), label)]
        if mine:
            target = mine[-1]
            done, _ = client.request(
                "PATCH", f"/repos/{ctx.repository}/issues/comments/{target['id']}", {"body": body}
            )
            action = "updated"
        else:
            done, _ = client.request(
                "POST", f"/repos/{ctx.repository}/issues/{ctx.pr}/comments", {"body": body}
            )
            action = "created"
    except HTTPFailure as exc:
        raise RemoteError(
            f"GitHub API: could not post the comment: {exc}", "the job needs 'pull-requests: write'"
        ) from None
    return Posted(action, str(done.get("html_url", "")), int(done["id"]), notes)
