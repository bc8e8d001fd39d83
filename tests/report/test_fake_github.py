"""The fake GitHub server behaves like GitHub where tests rely on it: no token, no upload."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest

from mlopskit import errors
from mlopskit.report import github

from ..fake_github import State, serve


def _env(api: str, state: State, token: str | None = None) -> dict[str, str]:
    return {
        "GITHUB_TOKEN": state.token if token is None else token,
        "GITHUB_REPOSITORY": state.repo,
        "GITHUB_API_URL": api,
    }


def test_release_assets_are_uploaded_with_the_token(tmp_path: Path) -> None:
    card = tmp_path / "MODEL_CARD.md"
    card.write_text("# card\n")
    state = State()
    with serve(state) as api:
        rel = github.publish_release(
            tag="model@v1.0.0", title="model v1.0.0", body="b", files=[card], env=_env(api, state)
        )
    assert rel.created and rel.assets == ["MODEL_CARD.md"]
    assert state.uploads == {"MODEL_CARD.md": b"# card\n"}


@pytest.mark.parametrize("auth", [None, "Bearer ghs_wrong"])
def test_an_upload_without_the_right_token_is_refused(auth: str | None) -> None:
    state = State()
    with serve(state) as api:
        url = f"{api}/uploads/repos/{state.repo}/releases/1/assets?name=model.skops"
        req = urllib.request.Request(url, data=b"weights", method="POST")
        if auth:
            req.add_header("Authorization", auth)
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(req, timeout=30)
    assert exc.value.code == 401
    assert state.uploads == {}


def test_publish_release_with_a_wrong_token_is_a_remote_error(tmp_path: Path) -> None:
    card = tmp_path / "MODEL_CARD.md"
    card.write_text("# card\n")
    state = State()
    with serve(state) as api, pytest.raises(errors.RemoteError) as exc:
        github.publish_release(
            tag="model@v1.0.0",
            title="t",
            body="b",
            files=[card],
            env=_env(api, state, token="ghs_wrong"),
        )
    assert "model@v1.0.0" in str(exc.value) and "401" in str(exc.value)
    assert state.releases == [] and state.uploads == {}
