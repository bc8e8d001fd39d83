"""``mlopskit.yaml``: the project's mlopskit settings, read into a frozen dataclass.

Only mlopskit's own settings live here; dvc.yaml, params.yaml and dvc.lock stay the
truth for the pipeline. Unknown keys are an error that names the file and the key.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import dotted, yamlio
from .errors import UsageError

FILENAME = "mlopskit.yaml"

HIGHER = "higher"
LOWER = "lower"

# Metric names whose direction is well known. A key matches by its last part (`test.rmse`
# -> `rmse`), whole or by its last known word (`val_loss`, `r2_score`, `mean_absolute_error`);
# a leading `neg_` (scikit-learn's `neg_mean_squared_error`) turns it round.
_DEFAULT_LOWER = frozenset(
    {
        "loss", "log_loss", "logloss", "nll", "rmse", "mse", "mae", "mape", "smape", "msle",
        "rmsle", "error", "err", "brier", "wer", "cer", "perplexity", "latency", "mad",
    }
)  # fmt: skip
_DEFAULT_HIGHER = frozenset(
    {
        "accuracy", "acc", "f1", "auc", "roc_auc", "pr_auc", "precision", "recall", "r2",
        "score", "iou", "map", "ndcg", "bleu", "rouge", "kappa", "mcc", "specificity",
        "sensitivity", "tpr", "tnr", "explained_variance", "jaccard", "dice",
    }
)  # fmt: skip


def known_direction(name: str) -> str | None:
    """``higher``/``lower`` for a metric whose name says it, else None."""
    leaf = name.rsplit(":", 1)[-1].rsplit(".", 1)[-1].lower()
    words = [w for w in re.split(r"[^a-z0-9]+", leaf) if w]
    flip = bool(words) and words[0] == "neg"
    if flip:
        words = words[1:]
    found: str | None = None
    candidates = ["_".join(words), *("_".join(words[i:]) for i in range(1, len(words)))]
    candidates += list(reversed(words))
    for cand in candidates:
        if cand in _DEFAULT_LOWER:
            found = LOWER
        elif cand in _DEFAULT_HIGHER:
            found = HIGHER
        if found:
            break
    if found and flip:
        return HIGHER if found == LOWER else LOWER
    return found


@dataclass(frozen=True)
class MetricsConfig:
    directions: Mapping[str, str] = field(default_factory=dict)

    def direction(self, name: str) -> str | None:
        """``higher``/``lower`` for a metric (configured first, then by name), else None."""
        leaf = name.rsplit(":", 1)[-1].rsplit(".", 1)[-1]
        for key in (name, leaf, leaf.lower()):
            if key in self.directions:
                return self.directions[key]
        return known_direction(name)


@dataclass(frozen=True)
class GitConfig:
    # GitHub warns above 50 MB and rejects files above 100 MB.
    max_file_mb: float = 50.0
    main_branch: str = "main"


REMOTE_KINDS = ("none", "local", "s3", "gs", "azure", "ssh")
# Secrets each kind reads when credentials come from secrets (auth: secrets).
DEFAULT_SECRETS = {
    "s3": ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
    "gs": ("GOOGLE_APPLICATION_CREDENTIALS_B64",),
    "azure": ("AZURE_STORAGE_CONNECTION_STRING",),
    "ssh": ("DVC_SSH_KEY",),
}
_OIDC_FIELDS = {
    "s3": ("role", "region"),
    "gs": ("workload_identity_provider", "service_account"),
    "azure": ("client_id", "tenant_id", "subscription_id"),
}
_PR_FIELDS = ("pr_environment", "pr_secrets", "pr_role", "pr_service_account", "pr_client_id")
_SAFE = re.compile(r"^[A-Za-z0-9_.:/@+=,-]+$")
_SECRET_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


@dataclass(frozen=True)
class CIRemote:
    kind: str = "none"
    auth: str = "secrets"  # "oidc" or "secrets"
    secrets: tuple[str, ...] = ()
    environment: str = "ml-training"  # the GitHub environment holding the secrets
    role: str = ""
    region: str = ""
    workload_identity_provider: str = ""
    service_account: str = ""
    client_id: str = ""
    tenant_id: str = ""
    subscription_id: str = ""
    # Pull-request jobs run untrusted code: their own read-only credentials, never the
    # CT environment (whose policy may admit only main). "" / (): the same as CT's.
    pr_environment: str = "ml-pull-requests"  # no branch policy: every PR may use it
    pr_secrets: tuple[str, ...] | None = None  # None: the same names as secrets
    pr_role: str = ""
    pr_service_account: str = ""
    pr_client_id: str = ""

    @property
    def stores(self) -> bool:
        return self.kind != "none"

    @property
    def uses_secrets(self) -> bool:
        return self.stores and bool(self.secrets)

    @property
    def pr_secret_names(self) -> tuple[str, ...]:
        return self.secrets if self.pr_secrets is None else self.pr_secrets


@dataclass(frozen=True)
class CIConfig:
    python: str = "3.11"
    runner: tuple[str, ...] = ("ubuntu-latest",)
    remote: CIRemote = field(default_factory=CIRemote)
    retrain_cron: str = "23 4 * * 1"
    ct_mode: str = "commit"  # or "pull-request"
    timeout_minutes: int = 120
    # A pip requirement for mlopskit itself ("": derived from how it was installed).
    install: str = ""
    index_url: str = ""  # the index ci.install's mlopskit==VERSION comes from
    # A secret holding a PAT or GitHub App token for CT's pushes and pull requests
    # ("": GITHUB_TOKEN, whose pushes and pull requests start no workflows).
    token_secret: str = ""


@dataclass(frozen=True)
class RegistryConfig:
    stages: tuple[str, ...] = ("dev", "staging", "prod")
    # A version cannot reach a stage without having been in the one before it.
    enforce_order: bool = False
    # Stages whose assignment must be an SSH-signed tag by a key in allowed_signers.
    require_signed: tuple[str, ...] = ()
    allowed_signers: str = ".github/allowed_signers"  # git's gpg.ssh.allowedSignersFile


@dataclass(frozen=True)
class MonitorConfig:
    reference: str | None = None  # the data the model was trained on (DVC-tracked)
    current: str | None = None  # production data: a DVC-tracked path or a dvc import-url
    columns: tuple[str, ...] = ()
    psi_threshold: float = 0.2
    ks_pvalue: float = 0.01
    chi2_pvalue: float = 0.01
    schedule: str = "37 5 * * *"


# A type name as skops reports it: dotted Python identifiers (``numpy.dtype``).
_TYPE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")


@dataclass(frozen=True)
class ServeConfig:
    # Types a skops model file may hold beyond those skops trusts by default, by exact
    # name. Reviewed in pull requests; never read from the model file itself.
    trusted_types: tuple[str, ...] = ()
    schema: str = "data/schema.yaml"  # the data contract requests must satisfy
    max_body_bytes: int = 1_048_576
    max_rows: int = 1000  # rows in one request
    token_env: str = "MLOPSKIT_SERVE_TOKEN"  # a bearer token is required when it is set
    log_max_bytes: int = 10_485_760  # the prediction log rotates past this size
    log_backups: int = 5
    log_sample: float = 1.0  # share of requests logged
    log_queue: int = 10_000  # requests waiting to be logged; beyond it they are dropped
    follow_seconds: float = 30.0


@dataclass(frozen=True)
class Config:
    name: str = "project"
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    git: GitConfig = field(default_factory=GitConfig)
    # Quality-gate rules, parsed by rules.parse_rule (strings or one-key mappings).
    gates: tuple[Any, ...] = ()
    ci: CIConfig = field(default_factory=CIConfig)
    registry: RegistryConfig = field(default_factory=RegistryConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)


def _unknown(where: str, key: str, known: list[str]) -> UsageError:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(known)}"
    return UsageError(f"{FILENAME}: unknown key '{where}{key}'", hint)


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise UsageError(f"{FILENAME}: '{where}' must be a mapping")
    return value


def _check_keys(section: Mapping[str, Any], where: str, known: list[str]) -> None:
    for key in section:
        if key not in known:
            raise _unknown(where, str(key), known)


def parse(data: Any) -> Config:
    top = _mapping(data, "<top level>")
    _check_keys(
        top, "", ["project", "metrics", "git", "gates", "ci", "registry", "monitor", "serve"]
    )

    project = _mapping(top.get("project"), "project")
    _check_keys(project, "project.", ["name"])
    name = str(project.get("name", "project"))

    metrics = _mapping(top.get("metrics"), "metrics")
    _check_keys(metrics, "metrics.", ["directions"])
    directions: dict[str, str] = {}
    for key, value in _mapping(metrics.get("directions"), "metrics.directions").items():
        if value not in (HIGHER, LOWER):
            raise UsageError(
                f"{FILENAME}: metrics.directions.{key} is {value!r}",
                "use 'higher' or 'lower'",
            )
        directions[str(key)] = str(value)

    git = _mapping(top.get("git"), "git")
    _check_keys(git, "git.", ["max_file_mb", "main_branch"])
    max_mb = git.get("max_file_mb", GitConfig.max_file_mb)
    if isinstance(max_mb, bool) or not isinstance(max_mb, int | float) or max_mb <= 0:
        raise UsageError(f"{FILENAME}: git.max_file_mb must be a positive number")
    main_branch = str(git.get("main_branch", GitConfig.main_branch))

    gates = top.get("gates") or []
    if not isinstance(gates, list):
        raise UsageError(f"{FILENAME}: 'gates' must be a list of rules like 'accuracy >= 0.9'")
    from .rules import parse_rule

    for rule in gates:
        parse_rule(rule)  # a malformed rule is reported when the file is read

    return Config(
        serve=_parse_serve(top.get("serve")),
        monitor=_parse_monitor(top.get("monitor")),
        registry=_parse_registry(top.get("registry")),
        ci=_parse_ci(top.get("ci")),
        gates=tuple(dotted.plain(g) for g in gates),
        name=name,
        metrics=MetricsConfig(directions=directions),
        git=GitConfig(max_file_mb=float(max_mb), main_branch=main_branch),
    )


_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# GitHub's schedule syntax (POSIX cron): the range of each field and its names, if any.
_CRON_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of the month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of the week", 0, 6, _WEEKDAYS),
)


def _cron_field(text: str, lo: int, hi: int, names: tuple[str, ...]) -> str | None:
    """Why ``text`` is not a valid cron field (None when it is): ``*``, values, ranges
    ``a-b``, steps ``/n`` and lists ``,`` of them; values are numbers in ``lo..hi`` or,
    where the field has names (JAN-DEC, SUN-SAT), those names in any case."""

    def value(v: str) -> int | None:
        if v.upper() in names:
            return names.index(v.upper()) + lo
        return int(v) if re.fullmatch(r"[0-9]{1,2}", v) else None

    for part in text.split(","):
        base, slash, step = part.partition("/")
        if slash and not (re.fullmatch(r"[0-9]{1,2}", step) and int(step) > 0):
            return f"'{part}' has step '{step}', not a positive number"
        if base == "*":
            continue
        first, dash, last = base.partition("-")
        a, b = value(first), value(last) if dash else value(first)
        if a is None or b is None or not lo <= a <= hi or not lo <= b <= hi:
            allowed = f"{lo}-{hi}" + (f" or {names[0]}-{names[-1]}" if names else "")
            return f"'{part}' is outside {allowed}"
        if a > b:
            return f"'{part}' is a range that ends before it starts"
    return None


def _cron(value: Any, where: str) -> str:
    """A schedule as GitHub reads it (five POSIX cron fields), never at minute 0."""
    cron = str(value)
    fields = cron.split()
    if len(fields) != 5:
        raise UsageError(
            f"{FILENAME}: {where} {cron!r} is not a 5-field cron expression",
            "MINUTE HOUR DAY MONTH WEEKDAY, e.g. '23 4 * * MON' (GitHub takes no @weekly)",
        )
    for text, (label, lo, hi, names) in zip(fields, _CRON_FIELDS, strict=True):
        why = _cron_field(text, lo, hi, names)
        if why:
            raise UsageError(
                f"{FILENAME}: {where} {cron!r}: the {label} field {why}",
                "use GitHub's cron syntax: minute 0-59, hour 0-23, day 1-31, month 1-12 or "
                "JAN-DEC, weekday 0-6 or SUN-SAT, with *, ',', '-' and '/'",
            )
    if fields[0] in ("0", "00", "*"):
        raise UsageError(
            f"{FILENAME}: {where} {cron!r} runs at minute {fields[0]}",
            "GitHub delays or drops runs at the top of the hour; pick a minute like 23",
        )
    return cron


def _parse_monitor(data: Any) -> MonitorConfig:
    m = _mapping(data, "monitor")
    _check_keys(
        m,
        "monitor.",
        [
            "reference",
            "current",
            "columns",
            "psi_threshold",
            "ks_pvalue",
            "chi2_pvalue",
            "schedule",
        ],
    )
    out: dict[str, Any] = {}
    for key in ("reference", "current"):
        if m.get(key) is not None:
            out[key] = _text(m[key], f"monitor.{key}")
    cols = m.get("columns", [])
    if not isinstance(cols, list):
        raise UsageError(f"{FILENAME}: monitor.columns must be a list of column names")
    out["columns"] = tuple(str(c) for c in cols)
    for key in ("psi_threshold", "ks_pvalue", "chi2_pvalue"):
        if key in m:
            v = m[key]
            if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0:
                raise UsageError(f"{FILENAME}: monitor.{key} must be a positive number")
            out[key] = float(v)
    if "schedule" in m:
        out["schedule"] = _cron(m["schedule"], "monitor.schedule")
    return MonitorConfig(**out)


def _parse_serve(data: Any) -> ServeConfig:
    s = _mapping(data, "serve")
    known = [f for f in ServeConfig.__dataclass_fields__]
    _check_keys(s, "serve.", known)
    out: dict[str, Any] = {}
    types = s.get("trusted_types", [])
    if not isinstance(types, list):
        raise UsageError(f"{FILENAME}: serve.trusted_types must be a list of type names")
    for t in types:
        if not isinstance(t, str) or not _TYPE_NAME.match(t):
            raise UsageError(
                f"{FILENAME}: serve.trusted_types: {t!r} is not a dotted type name",
                "write the exact name skops reports, e.g. numpy.dtype",
            )
    out["trusted_types"] = tuple(types)
    if "schema" in s:
        out["schema"] = _text(s["schema"], "serve.schema")
    if "token_env" in s:
        out["token_env"] = _text(s["token_env"], "serve.token_env", _SECRET_NAME)
    for key in ("max_body_bytes", "max_rows", "log_max_bytes", "log_queue", "log_backups"):
        if key in s:
            v = s[key]
            low = 0 if key == "log_backups" else 1
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise UsageError(f"{FILENAME}: serve.{key} must be a whole number >= {low}")
            out[key] = v
    if "log_sample" in s:
        v = s["log_sample"]
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 1:
            raise UsageError(f"{FILENAME}: serve.log_sample must be a number from 0 to 1")
        out["log_sample"] = float(v)
    if "follow_seconds" in s:
        v = s["follow_seconds"]
        if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0:
            raise UsageError(f"{FILENAME}: serve.follow_seconds must be a positive number")
        out["follow_seconds"] = float(v)
    return ServeConfig(**out)


def _parse_registry(data: Any) -> RegistryConfig:
    r = _mapping(data, "registry")
    _check_keys(r, "registry.", ["stages", "enforce_order", "require_signed", "allowed_signers"])
    stages = r.get("stages", list(RegistryConfig.stages))
    if not isinstance(stages, list) or not stages:
        raise UsageError(f"{FILENAME}: registry.stages must be a non-empty list")
    if "stages" in r:
        from .names import is_registry_name  # imported only when needed
    for st in stages if "stages" in r else []:
        if not is_registry_name(st):
            raise UsageError(f"{FILENAME}: registry.stages: {st!r} is not a valid stage name")
    order = r.get("enforce_order", False)
    if not isinstance(order, bool):
        raise UsageError(f"{FILENAME}: registry.enforce_order must be true or false")
    signed = r.get("require_signed", [])
    if not isinstance(signed, list) or not all(isinstance(x, str) for x in signed):
        raise UsageError(f"{FILENAME}: registry.require_signed must be a list of stage names")
    signers = _text(
        r.get("allowed_signers", RegistryConfig.allowed_signers), "registry.allowed_signers"
    )
    return RegistryConfig(
        stages=tuple(stages),
        enforce_order=order,
        require_signed=tuple(signed),
        allowed_signers=signers,
    )


def _text(value: Any, where: str, pattern: re.Pattern[str] = _SAFE) -> str:
    text = str(value)
    if not pattern.match(text):
        raise UsageError(
            f"{FILENAME}: {where} {text!r} has characters that are not allowed",
            "use letters, digits and . _ - : / @ + = ,",
        )
    return text


def _parse_ci(data: Any) -> CIConfig:
    ci = _mapping(data, "ci")
    _check_keys(
        ci,
        "ci.",
        [
            "python",
            "runner",
            "remote",
            "retrain_cron",
            "ct_mode",
            "timeout_minutes",
            "install",
            "index_url",
            "token_secret",
        ],
    )
    python = _text(ci.get("python", CIConfig.python), "ci.python", re.compile(r"^3\.\d{1,2}$"))
    if int(python.split(".")[1]) < 11:
        raise UsageError(
            f"{FILENAME}: ci.python {python!r} is older than mlopskit supports",
            "mlopskit needs Python 3.11 or later: set ci.python to '3.11' or newer",
        )
    runner_raw = ci.get("runner", list(CIConfig.runner))
    runner = tuple(runner_raw) if isinstance(runner_raw, list) else (runner_raw,)
    runner = tuple(_text(r, "ci.runner label") for r in runner)
    if not runner:
        raise UsageError(f"{FILENAME}: ci.runner needs at least one label")
    cron = _cron(ci.get("retrain_cron", CIConfig.retrain_cron), "ci.retrain_cron")
    mode = str(ci.get("ct_mode", CIConfig.ct_mode))
    if mode not in ("commit", "pull-request"):
        raise UsageError(f"{FILENAME}: ci.ct_mode must be 'commit' or 'pull-request'")
    timeout = ci.get("timeout_minutes", CIConfig.timeout_minutes)
    if isinstance(timeout, bool) or not isinstance(timeout, int) or not 1 <= timeout <= 4320:
        raise UsageError(f"{FILENAME}: ci.timeout_minutes must be a whole number of minutes")
    install, index_url = _parse_ci_install(ci)
    token = ci.get("token_secret") or ""
    if token:
        token = _text(token, "ci.token_secret", _SECRET_NAME)
        if token.startswith("GITHUB_"):
            raise UsageError(
                f"{FILENAME}: ci.token_secret {token!r}: GitHub reserves secret names "
                "starting with GITHUB_",
                "store the PAT or GitHub App token as e.g. CT_TOKEN and name that",
            )
    return CIConfig(
        python=python,
        runner=runner,
        remote=_parse_ci_remote(ci.get("remote")),
        retrain_cron=cron,
        ct_mode=mode,
        timeout_minutes=timeout,
        install=install,
        index_url=index_url,
        token_secret=token,
    )


_COMMIT_URL = re.compile(r"^git\+https://[^@\s]+@[0-9a-f]{40}$")
_WHEEL_URL = re.compile(r"^https?://[^@\s#]+\.whl#sha256=[0-9a-f]{64}$")
_PINNED_NAME = re.compile(r"^mlopskit==\d+(\.\d+)*([a-z]+\d*)?$")
INSTALL_FORMS = (
    "a git+https://HOST/REPO.git@COMMIT URL (the full 40-character commit), "
    "a wheel URL ending in #sha256=HASH, or mlopskit==VERSION together with ci.index_url"
)


def check_install(value: str, index_url: str = "", *, where: str = "ci.install") -> str:
    """A reproducible pip requirement for mlopskit itself, or a UsageError naming the forms.

    Never a bare ``mlopskit==VERSION``: on PyPI that name is an unrelated placeholder.
    """
    text = _text(value, where, re.compile(r"^[A-Za-z0-9_.:/@+=,#%~-]+$"))
    if _COMMIT_URL.match(text) or _WHEEL_URL.match(text):
        return text
    if _PINNED_NAME.match(text):
        if index_url:
            return text
        raise UsageError(
            f"{FILENAME}: {where} {text!r} without ci.index_url would install from PyPI, "
            "where the name mlopskit is an unrelated placeholder package",
            f"use {INSTALL_FORMS}",
        )
    raise UsageError(
        f"{FILENAME}: {where} {text!r} is not a reproducible source of mlopskit",
        f"use {INSTALL_FORMS}",
    )


def _parse_ci_install(ci: Mapping[str, Any]) -> tuple[str, str]:
    index_url = ""
    if ci.get("index_url"):
        index_url = _text(ci["index_url"], "ci.index_url")
        if not index_url.startswith("https://") or "@" in index_url:
            raise UsageError(
                f"{FILENAME}: ci.index_url {index_url!r} must be an https:// URL "
                "without credentials",
                "runners read credentials from secrets, not from mlopskit.yaml",
            )
    install = ci.get("install") or ""
    if install:
        install = check_install(str(install), index_url)
    elif index_url:
        raise UsageError(
            f"{FILENAME}: ci.index_url is set but ci.install is not",
            "set ci.install: mlopskit==VERSION",
        )
    return install, index_url


def _parse_ci_remote(data: Any) -> CIRemote:
    r = _mapping(data, "ci.remote")
    known = [
        "kind",
        "auth",
        "secrets",
        "environment",
        *sorted({f for fs in _OIDC_FIELDS.values() for f in fs}),
        *_PR_FIELDS,
    ]
    _check_keys(r, "ci.remote.", known)
    kind = str(r.get("kind", "none"))
    if kind not in REMOTE_KINDS:
        raise UsageError(
            f"{FILENAME}: ci.remote.kind {kind!r}", f"use one of {', '.join(REMOTE_KINDS)}"
        )
    auth = str(
        r.get(
            "auth",
            "oidc"
            if kind in _OIDC_FIELDS and any(f in r for f in _OIDC_FIELDS[kind])
            else "secrets",
        )
    )
    if auth not in ("oidc", "secrets"):
        raise UsageError(f"{FILENAME}: ci.remote.auth must be 'oidc' or 'secrets'")
    if auth == "oidc" and kind not in _OIDC_FIELDS:
        raise UsageError(f"{FILENAME}: ci.remote.auth 'oidc' is for s3, gs and azure remotes")
    values = {
        f: _text(r[f], f"ci.remote.{f}") for fs in _OIDC_FIELDS.values() for f in fs if f in r
    }
    if auth == "oidc":
        missing = [f for f in _OIDC_FIELDS[kind] if not values.get(f)]
        if missing:
            raise UsageError(f"{FILENAME}: ci.remote with auth 'oidc' needs {', '.join(missing)}")
        secrets: tuple[str, ...] = ()
    else:
        raw = r.get("secrets", list(DEFAULT_SECRETS.get(kind, ())))
        if not isinstance(raw, list):
            raise UsageError(f"{FILENAME}: ci.remote.secrets must be a list of secret names")
        secrets = tuple(_text(x, "ci.remote.secrets entry", _SECRET_NAME) for x in raw)
    env = _text(r.get("environment", CIRemote.environment), "ci.remote.environment")
    pr: dict[str, Any] = {}
    for f in ("pr_role", "pr_service_account", "pr_client_id"):
        if r.get(f):
            pr[f] = _text(r[f], f"ci.remote.{f}")
    if "pr_secrets" in r:
        raw_pr = r["pr_secrets"]
        if not isinstance(raw_pr, list):
            raise UsageError(f"{FILENAME}: ci.remote.pr_secrets must be a list of secret names")
        pr["pr_secrets"] = tuple(
            _text(x, "ci.remote.pr_secrets entry", _SECRET_NAME) for x in raw_pr
        )
    pr_count = len(pr.get("pr_secrets", secrets))
    if kind in ("s3", "azure") and auth == "secrets" and pr_count != len(secrets):
        raise UsageError(
            f"{FILENAME}: ci.remote.pr_secrets names {pr_count} secret(s), "
            f"ci.remote.secrets {len(secrets)}",
            "give one read-only secret for each of "
            + ", ".join(secrets)
            + " (passed as those variables)",
        )
    pr["pr_environment"] = _text(
        r.get("pr_environment", CIRemote.pr_environment), "ci.remote.pr_environment"
    )
    if pr["pr_environment"] == env:
        raise UsageError(
            f"{FILENAME}: ci.remote.pr_environment is CT's environment {env!r}",
            "pull-request jobs run untrusted code: give them an environment (or repository "
            "secrets) of their own, with read-only credentials",
        )
    return CIRemote(kind=kind, auth=auth, secrets=secrets, environment=env, **{**values, **pr})


def load(root: Path) -> Config:
    """Read ``ROOT/mlopskit.yaml``; a missing file gives the defaults."""
    data = yamlio.load(root / FILENAME, display=FILENAME, missing_ok=True)
    return parse(data)
