"""The ASGI application: Starlette routes on uvicorn, Prometheus metrics, limits, auth.

Routes: ``POST /invocations`` (MLflow's scoring formats and answer), the Open Inference
Protocol v2 routes KServe uses, ``/health/live``, ``/health/ready``, ``/metadata`` and
``/metrics``. Every request answers JSON; a failure inside is a 500 with one line and
no traceback (the traceback goes to the server's log).

This is the only module that imports Starlette, uvicorn and prometheus-client.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hmac
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import __version__
from .inputs import BadRequest, Contract, mlflow_table, parse_json, v2_table
from .loader import Served
from .predlog import Entry, PredictionLog

log = logging.getLogger("uvicorn.error")
ENV = "MLOPSKIT_SERVE_SETTINGS"
PUBLIC = frozenset(
    {"/health/live", "/health/ready", "/v2/health/live", "/v2/health/ready", "/ping"}
)
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


@dataclass(frozen=True)
class Settings:
    """What a worker process needs to rebuild the app (passed as JSON in ``ENV``)."""

    root: str
    spec: str
    remote: str | None = None
    log_dir: str | None = None
    follow: bool = False
    # With --workers N: prometheus-client's multiprocess directory (PROMETHEUS_MULTIPROC_DIR),
    # private to this `serve`; /metrics then adds up every worker's values.
    metrics_dir: str | None = None

    def to_env(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_env(cls) -> Settings:
        return cls(**json.loads(os.environ[ENV]))


@dataclass(frozen=True)
class Live:
    """The model being served and its request contract: swapped as one reference."""

    served: Served
    contract: Contract


class State:
    def __init__(
        self,
        live: Live,
        *,
        max_body_bytes: int,
        token: str | None,
        predlog: PredictionLog | None = None,
        metrics_dir: str | None = None,
    ) -> None:
        self.live = live
        self.metrics_dir = metrics_dir
        self.max_body_bytes = max_body_bytes
        self._token = token.encode() if token else None
        self.predlog = predlog
        self.ready = True
        self.follower: Any = None
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "mlopskit_serve_requests",
            "Requests by endpoint and status.",
            ["endpoint", "code"],
            registry=r,
        )
        self.latency = Histogram(
            "mlopskit_serve_request_duration_seconds",
            "Time to answer, by endpoint.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "mlopskit_serve_errors",
            "Requests answered with an error, by kind.",
            ["endpoint", "kind"],
            registry=r,
        )
        self.rows = Counter("mlopskit_serve_predicted_rows", "Rows predicted.", registry=r)
        self.model_info = Gauge(
            "mlopskit_serve_model_info",
            "The model being served (value 1).",
            ["artifact", "version", "stage", "md5"],
            registry=r,
            multiprocess_mode="max",  # across workers: 1 while any worker serves it
        )
        self.swaps = Counter(
            "mlopskit_serve_model_swaps", "Models swapped in by --follow.", registry=r
        )
        self.follow_failures = Counter(
            "mlopskit_serve_follow_failures",
            "New stage versions refused (verification failed) or not fetched.",
            registry=r,
        )
        self.predlog_counts = {
            what: Counter(f"mlopskit_serve_predlog_{what}", doc, registry=r)
            for what, doc in (
                ("written", "Rows written to the prediction log."),
                ("dropped", "Requests dropped: log queue full."),
                ("failed", "Requests the log writer failed on."),
            )
        }
        self._shown: tuple[str, str, str, str] | None = None
        self._show(live)

    def count_predlog(self, what: str, n: int) -> None:
        self.predlog_counts[what].inc(n)

    def _show(self, live: Live) -> None:
        s = live.served
        if self._shown is not None:  # 0, not removed: a multiprocess file keeps its values
            self.model_info.labels(*self._shown).set(0)
        self._shown = (s.target.artifact, s.target.version, s.target.stage, s.md5)
        self.model_info.labels(*self._shown).set(1)

    def swap(self, live: Live) -> None:
        """In-flight requests keep the ``Live`` they took; new ones get this one."""
        self.live = live
        self._show(live)
        self.swaps.inc()

    def authorized(self, request: Request) -> bool:
        if self._token is None or request.url.path in PUBLIC:
            return True
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), self._token
        )


def _json(data: Any, status: int = 200) -> Response:
    return Response(
        orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        media_type="application/json",
    )


_KINDS = {400: "bad_request", 401: "unauthorized", 404: "not_found", 413: "too_large"}
_KINDS |= {415: "media_type", 422: "contract", 500: "internal", 503: "not_ready"}


async def _body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise BadRequest(413, f"the body has {length} bytes; the limit is {limit} (max_body_bytes)")
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if ctype and ctype != "application/json" and not ctype.endswith("+json"):
        raise BadRequest(415, f"send application/json, not {ctype}")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(413, f"the body is over {limit} bytes (max_body_bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


DRAIN_BYTES = 16 * 1_048_576


async def _drain(request: Request) -> None:
    """Read and drop the rest of a refused body (up to 16 MiB), so that the client reads
    the 413 instead of a connection reset while it is still sending."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > DRAIN_BYTES:
        return
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > DRAIN_BYTES:
                return
    except Exception:  # already consumed, or the client went away
        return


def _datatype(values: Any) -> str:
    kind = getattr(getattr(values, "dtype", None), "kind", "O")
    return {"i": "INT64", "u": "UINT64", "f": "FP64", "b": "BOOL"}.get(kind, "BYTES")


Handler = Callable[[Request], Any]


def build(state: State, *, lifespan: Any = None) -> Starlette:
    def mlflow_error(exc: BadRequest) -> Response:
        code = "INVALID_PARAMETER_VALUE" if exc.status in (413, 422) else "BAD_REQUEST"
        if exc.status >= 500:
            code = "INTERNAL_ERROR"
        body: dict[str, Any] = {"error_code": code, "message": exc.message}
        if exc.errors:
            body["errors"] = exc.errors
        return _json(body, exc.status)

    def v2_error(exc: BadRequest) -> Response:
        body: dict[str, Any] = {"error": exc.message}
        if exc.errors:
            body["errors"] = exc.errors
        return _json(body, exc.status)

    async def predict(
        request: Request,
        endpoint: str,
        table: Callable[[Any, Sequence[str]], tuple[list[str], list[list[Any]]]],
        answer: Callable[[Live, Any, Any], Any],
        error: Callable[[BadRequest], Response],
        name: str | None = None,
    ) -> Response:
        start = time.perf_counter()
        live = state.live  # this request's model, whatever --follow swaps in meanwhile
        try:
            if not state.authorized(request):
                raise BadRequest(401, "a bearer token is required (Authorization: Bearer ...)")
            if name is not None:
                _check_name(live, name, request.path_params.get("version"))
            body = parse_json(await _body(request, state.max_body_bytes))
            names, rows = table(body, live.contract.names)
            frame = live.contract.table(names, rows)
            try:
                preds = live.served.model.predict(frame)
            except Exception as exc:  # the model failed on valid input: no traceback out
                log.exception("predict failed")
                raise BadRequest(
                    500, f"the model failed on this input ({type(exc).__name__})"
                ) from None
            response = _json(answer(live, preds, body))
            state.rows.inc(len(rows))
            if state.predlog is not None:
                s = live.served.target
                state.predlog.submit(Entry(s.artifact, s.version, names, rows, preds))
        except BadRequest as exc:
            response = error(exc)
            if exc.status == 401:
                response.headers["www-authenticate"] = "Bearer"
            if exc.status == 413:
                await _drain(request)
            state.errors.labels(endpoint, _KINDS.get(exc.status, str(exc.status))).inc()
        except Exception:
            log.exception("request failed")
            response = error(BadRequest(500, "internal error; see the server log"))
            state.errors.labels(endpoint, "internal").inc()
        state.requests.labels(endpoint, str(response.status_code)).inc()
        state.latency.labels(endpoint).observe(time.perf_counter() - start)
        return response

    def _check_name(live: Live, name: str, version: str | None) -> None:
        t = live.served.target
        if name != t.artifact or (version is not None and version != t.version):
            raise BadRequest(
                404,
                f"model {name!r}{f' version {version!r}' if version else ''} is not served "
                f"here (serving {t.artifact} {t.version})",
            )

    def mlflow_answer(live: Live, preds: Any, body: Any) -> Any:
        return {"predictions": preds}

    def v2_answer(live: Live, preds: Any, body: Any) -> Any:
        t = live.served.target
        rid = body.get("id") if isinstance(body, dict) and isinstance(body.get("id"), str) else None
        dtype = _datatype(preds)
        data = preds.tolist() if dtype != "BYTES" else [str(p) for p in preds]
        return {
            "model_name": t.artifact,
            "model_version": t.version,
            "id": rid or str(uuid.uuid4()),
            "outputs": [{"name": "predict", "shape": [len(data)], "datatype": dtype, "data": data}],
        }

    async def invocations(request: Request) -> Response:
        return await predict(request, "invocations", mlflow_table, mlflow_answer, mlflow_error)

    async def v2_infer(request: Request) -> Response:
        return await predict(
            request, "v2_infer", v2_table, v2_answer, v2_error, request.path_params["name"]
        )

    def simple(
        endpoint: str,
        fn: Callable[[Request], Response],
        error: Callable[[BadRequest], Response] = mlflow_error,
    ) -> Handler:
        async def handler(request: Request) -> Response:
            start = time.perf_counter()
            try:
                if not state.authorized(request):
                    raise BadRequest(401, "a bearer token is required (Authorization: Bearer ...)")
                response = fn(request)
            except BadRequest as exc:
                response = error(exc)
                if exc.status == 401:
                    response.headers["www-authenticate"] = "Bearer"
                state.errors.labels(endpoint, _KINDS.get(exc.status, str(exc.status))).inc()
            state.requests.labels(endpoint, str(response.status_code)).inc()
            state.latency.labels(endpoint).observe(time.perf_counter() - start)
            return response

        return handler

    def live_ok(request: Request) -> Response:
        return _json({"status": "live"})

    def ready(request: Request) -> Response:
        if not state.ready:
            raise BadRequest(503, "the model is not loaded")
        t = state.live.served.target
        return _json({"status": "ready", "artifact": t.artifact, "version": t.version})

    def v2_ready(request: Request) -> Response:
        return _json({"ready": bool(state.ready)}, 200 if state.ready else 503)

    def metadata(request: Request) -> Response:
        meta = state.live.served.metadata()
        meta["follow"] = state.follower is not None
        meta["server"] = {"name": "mlopskit", "version": __version__}
        return _json(meta)

    def v2_server(request: Request) -> Response:
        return _json({"name": "mlopskit", "version": __version__, "extensions": []})

    def v2_model(request: Request) -> Response:
        live = state.live
        _check_name(live, request.path_params["name"], request.path_params.get("version"))
        t = live.served.target
        dtypes = {"integer": "INT64", "float": "FP64", "boolean": "BOOL"}
        return _json(
            {
                "name": t.artifact,
                "versions": [t.version],
                "platform": "sklearn",
                "inputs": [
                    {"name": c.name, "datatype": dtypes.get(c.type, "BYTES"), "shape": [-1]}
                    for c in live.contract.columns
                ],
                "outputs": [{"name": "predict", "datatype": "BYTES", "shape": [-1]}],
            }
        )

    def v2_model_ready(request: Request) -> Response:
        _check_name(state.live, request.path_params["name"], request.path_params.get("version"))
        return v2_ready(request)

    def metrics(request: Request) -> Response:
        registry = state.registry
        if state.metrics_dir is not None:  # every worker's values, added up
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=state.metrics_dir)  # type: ignore[no-untyped-call]
        return Response(
            generate_latest(registry), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    def v2(fn: Callable[[Request], Response], endpoint: str) -> Handler:
        return simple(endpoint, fn, v2_error)

    routes = [
        Route("/invocations", invocations, methods=["POST"]),
        Route("/health/live", simple("health_live", live_ok), methods=["GET"]),
        Route("/health/ready", simple("health_ready", ready), methods=["GET"]),
        Route("/ping", simple("ping", ready), methods=["GET"]),
        Route("/metadata", simple("metadata", metadata), methods=["GET"]),
        Route("/metrics", simple("metrics", metrics), methods=["GET"]),
        Route("/v2", v2(v2_server, "v2_server"), methods=["GET"]),
        Route("/v2/health/live", v2(lambda r: _json({"live": True}), "v2_live"), methods=["GET"]),
        Route("/v2/health/ready", v2(v2_ready, "v2_ready"), methods=["GET"]),
        Route("/v2/models/{name:path}/versions/{version}/infer", v2_infer, methods=["POST"]),
        Route(
            "/v2/models/{name:path}/versions/{version}/ready",
            v2(v2_model_ready, "v2_model_ready"),
            methods=["GET"],
        ),
        Route(
            "/v2/models/{name:path}/versions/{version}", v2(v2_model, "v2_model"), methods=["GET"]
        ),
        Route("/v2/models/{name:path}/infer", v2_infer, methods=["POST"]),
        Route(
            "/v2/models/{name:path}/ready", v2(v2_model_ready, "v2_model_ready"), methods=["GET"]
        ),
        Route("/v2/models/{name:path}", v2(v2_model, "v2_model"), methods=["GET"]),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        state.requests.labels("other", str(status)).inc()
        return _json(
            {
                "error_code": "NOT_FOUND" if status == 404 else "BAD_REQUEST",
                "message": f"{request.method} {request.url.path}: "
                + str(getattr(exc, "detail", "not found")),
            },
            status,
        )

    async def internal(request: Request, exc: Exception) -> Response:
        log.error("unhandled error", exc_info=exc)
        return _json(
            {"error_code": "INTERNAL_ERROR", "message": "internal error; see the server log"}, 500
        )

    return Starlette(
        routes=routes,
        exception_handlers={404: not_found, 405: not_found, 500: internal},
        lifespan=lifespan,
    )


# --- running ----------------------------------------------------------------------------


def make_state(settings: Settings, served: Served | None = None) -> State:
    from ..project import Project
    from . import loader

    project = Project(root=Path(settings.root))
    cfg = project.config.serve
    if served is None:
        served = loader.load(project, settings.spec, remote=settings.remote)
    live = Live(served, Contract(served.columns, served.allow_extra_columns, cfg.max_rows))
    token = os.environ.get(cfg.token_env) or None
    state = State(
        live, max_body_bytes=cfg.max_body_bytes, token=token, metrics_dir=settings.metrics_dir
    )
    if settings.log_dir:
        state.predlog = PredictionLog(
            Path(settings.log_dir),
            max_bytes=cfg.log_max_bytes,
            backups=cfg.log_backups,
            sample=cfg.log_sample,
            queue_size=cfg.log_queue,
            on_count=state.count_predlog,
        )
    return state


def create(settings: Settings, served: Served | None = None) -> Starlette:
    state = make_state(settings, served)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if state.predlog is not None:
            state.predlog.start()
        stop = threading.Event()
        follower = None
        if settings.follow:
            from .follow import Follower

            follower = Follower(settings, state, stop)
            state.follower = follower
            follower.start()
        try:
            yield
        finally:
            stop.set()
            if follower is not None:
                follower.join(timeout=30)
            if state.predlog is not None:
                state.predlog.close()

    app = build(state, lifespan=lifespan)
    app.state.mlopskit = state
    return app


def from_env() -> Starlette:
    """The uvicorn factory each worker process calls (``--workers N``): it fetches and
    verifies the model itself."""
    return create(Settings.from_env())


def run(
    settings: Settings,
    served: Served,
    *,
    host: str,
    port: int,
    workers: int = 1,
    access_log: bool = False,
) -> None:
    import uvicorn

    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "access_log": access_log,
        "lifespan": "on",
        "timeout_graceful_shutdown": 30,
        "server_header": False,
        "log_level": "info",
    }
    if workers > 1:
        import shutil
        import tempfile

        # Each worker writes its metrics to files here (prometheus-client's multiprocess
        # mode, chosen when a worker imports it); /metrics in any worker adds them up.
        metrics_dir = tempfile.mkdtemp(prefix="mlopskit-serve-metrics-")
        previous = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        os.environ[ENV] = dataclasses.replace(settings, metrics_dir=metrics_dir).to_env()
        try:
            uvicorn.run("mlopskit.serve.app:from_env", factory=True, workers=workers, **common)
        finally:
            shutil.rmtree(metrics_dir, ignore_errors=True)
            if previous is None:
                del os.environ["PROMETHEUS_MULTIPROC_DIR"]
            else:
                os.environ["PROMETHEUS_MULTIPROC_DIR"] = previous
        return
    uvicorn.Server(uvicorn.Config(create(settings, served), **common)).run()
