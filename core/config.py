"""The one frozen settings object, read from EMBEDSCOPE_* environment variables and an optional .env."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from core.errors import BadInputError

ENV_PREFIX = "EMBEDSCOPE_"

Device = Literal["auto", "cpu", "cuda", "mps"]


REDACTED = "***"


def redact_url(url: str) -> str:
    """`url` safe to show or log: credentials in it (http://user:pw@host, or a token as the
    user name) become "***" (http://***@host).

    The API key travels in a header and is never part of the URL; credentials in the URL itself
    (basic auth behind a proxy) would otherwise reach CLI errors, logs and the dashboard. Text
    that does not parse as a URL keeps only what follows its last "@".
    """
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed "[" IPv6 host
        parts = None
    if parts is None or ("://" not in url and "@" in url):  # not a URL: "user:pw@host:6333"
        return f"{REDACTED}@{url.rsplit('@', 1)[1]}" if "@" in url else url
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{REDACTED}@{host}"))


def _default_data_dir() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "embedscope"


class Settings(BaseSettings):
    """Everything that differs between deployments. Build it with `load_settings()` at an edge.

    Where Qdrant is:
      * default: an embedded on-disk store (Qdrant Edge) under `<data_dir>/qdrant`;
      * `qdrant_path=":memory:"`: an embedded throw-away store;
      * `qdrant_url=http://host:6333` (+ `qdrant_api_key`): a Qdrant server or cluster.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    data_dir: Path = Field(default_factory=_default_data_dir)
    qdrant_url: str | None = None
    qdrant_api_key: SecretStr | None = None
    qdrant_path: str | None = None
    qdrant_timeout_s: float = 10.0
    # Images are read only from under these folders (plus the data dir's uploads/ and demo/).
    data_roots: Annotated[tuple[Path, ...], NoDecode] = ()
    image_model: str = "openai/clip-vit-base-patch32"
    text_model: str = "sentence-transformers/all-MiniLM-L6-v2"
    device: Device = "auto"
    batch_size: int = Field(default=32, ge=1, le=4096)
    num_workers: int = Field(default=2, ge=0, le=64)
    # Decompression-bomb guard: images above this many pixels are rejected, not decoded.
    max_image_pixels: int = Field(default=64_000_000, ge=1)
    max_upload_mb: int = Field(default=512, ge=1)
    # Local model folders whose weights are only pickles (pytorch_model.bin, *.pt, *.pkl) can run
    # code when loaded: refused unless this is set (safetensors folders always load).
    allow_pickled_models: bool = False
    # The demo (dashboard "Load demo", `embedscope demo`) also embeds with the offline pretrained
    # models; False: a fast demo without them (the browser tests use it).
    demo_pretrained: bool = True
    log_level: str = "INFO"
    # Roles (core.auth). The local identity: the CLI's, and the dashboard's when sign-in is off.
    actor_name: str | None = None  # default: the OS user
    actor_role: Literal["viewer", "editor", "admin"] = "admin"  # a laptop user owns their store
    # Signed-in users: comma lists of group names, e-mails or "@domain"; the highest matching role wins.
    role_admins: Annotated[tuple[str, ...], NoDecode] = ()
    role_editors: Annotated[tuple[str, ...], NoDecode] = ()
    role_viewers: Annotated[tuple[str, ...], NoDecode] = ()
    role_claim: str = "groups"  # the ID-token claim holding the user's groups
    default_role: Literal["viewer", "editor", "none"] = "viewer"  # signed in but matching no rule
    # Background jobs (core.jobs): worker threads per dashboard process, and how long a page waits for
    # a job it started before it shows the job's progress and lets the user go on.
    job_workers: int = Field(default=2, ge=1, le=16)
    job_wait_s: float = Field(default=2.0, ge=0.0)
    # Sign-in with OpenID Connect (st.login; ui.serve turns these into Streamlit's [auth] secrets).
    auth_client_id: str | None = None
    auth_client_secret: SecretStr | None = None
    auth_server_metadata_url: str | None = None  # the provider's .well-known/openid-configuration
    auth_redirect_uri: str | None = None  # https://<host>/oauth2callback; default http://localhost:<port>/...
    auth_cookie_secret: SecretStr | None = None  # signs the sign-in cookie; default: generated, kept in data_dir
    auth_required: bool = False  # the Compose deployment: refuse to start without sign-in configured

    @field_validator("data_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: Any) -> Any:
        # Accept "a:b" (os.pathsep) or "a,b" from the environment, like PATH.
        if isinstance(value, str):
            parts = [p for chunk in value.split(",") for p in chunk.split(os.pathsep)]
            return tuple(Path(p).expanduser() for p in parts if p.strip())
        return value

    @field_validator("role_admins", "role_editors", "role_viewers", mode="before")
    @classmethod
    def _split_names(cls, value: Any) -> Any:
        if isinstance(value, str):  # "ml-admins, bob@example.com, @example.com" from the environment
            return tuple(p.strip() for p in value.split(",") if p.strip())
        return value

    @field_validator("qdrant_url", "qdrant_path", "actor_name", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("auth_client_id", "auth_client_secret", "auth_server_metadata_url", "auth_redirect_uri",
                     "auth_cookie_secret", mode="before")
    @classmethod
    def _auth_blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("auth_server_metadata_url", "auth_redirect_uri")
    @classmethod
    def _check_auth_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        """http(s) with a host; the redirect URI must end with Streamlit's /oauth2callback route."""
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{redact_url(value)} must be an http:// or https:// URL with a host")
        if info.field_name == "auth_redirect_uri" and not parts.path.endswith("/oauth2callback"):
            raise ValueError(f"{redact_url(value)} must end with /oauth2callback (Streamlit's sign-in callback)")
        return value.strip()

    @field_validator("qdrant_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        """An http(s) URL with a host and a valid port, so a typo fails here with a message
        instead of deep inside qdrant-client; the URL is shown redacted."""
        if value is None:
            return None
        try:
            parts = urlsplit(value.strip())
            port = parts.port  # raises ValueError when out of range or not a number
        except ValueError as e:
            raise ValueError(f"{redact_url(value)} is not a valid URL ({e})") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{redact_url(value)} must be an http:// or https:// URL with a host, "
                             "e.g. http://localhost:6333")
        del port
        return value.strip()

    @property
    def uploads_dir(self) -> Path:
        """Where dashboard uploads are unpacked (always an allowed data root)."""
        return self.data_dir / "uploads"

    @property
    def demo_dir(self) -> Path:
        """Where the offline demo writes its images (always an allowed data root)."""
        return self.data_dir / "demo"

    @property
    def cache_dir(self) -> Path:
        """Thumbnails and other derived, re-creatable files."""
        return self.data_dir / "cache"

    @property
    def embedded_path(self) -> str:
        """The embedded store's folder, or ':memory:'."""
        return self.qdrant_path or str(self.data_dir / "qdrant")

    @property
    def allowed_roots(self) -> tuple[Path, ...]:
        """Every folder images may be served or read from, resolved."""
        roots = (*self.data_roots, self.uploads_dir, self.demo_dir)
        return tuple(Path(r).expanduser().resolve() for r in roots)

    @property
    def auth_enabled(self) -> bool:
        """Sign-in is configured: EMBEDSCOPE_AUTH_CLIENT_ID and _SERVER_METADATA_URL are set, or a
        .streamlit/secrets.toml (Streamlit's own places) has an [auth] section."""
        if self.auth_client_id and self.auth_server_metadata_url:
            return True
        return any(_toml_has_auth(path) for path in (Path.home() / ".streamlit" / "secrets.toml",
                                                     Path.cwd() / ".streamlit" / "secrets.toml"))

    def describe_store(self) -> str:
        """A human description of where Qdrant is, never containing the API key or a password."""
        if self.qdrant_url:
            return f"Qdrant server at {redact_url(self.qdrant_url)}"
        if self.embedded_path == ":memory:":
            return "embedded Qdrant Edge (in memory)"
        return f"embedded Qdrant Edge at {self.embedded_path}"


def _toml_has_auth(path: Path) -> bool:
    """True when `path` is a TOML file with an [auth] table (a user's own Streamlit sign-in secrets)."""
    try:
        with path.open("rb") as f:
            return isinstance(tomllib.load(f).get("auth"), dict)
    except (OSError, tomllib.TOMLDecodeError):  # absent or unreadable: Streamlit ignores it too
        return False


def load_settings(**overrides: Any) -> Settings:
    """Build the settings from the environment (and .env), with explicit overrides winning.

    Raises BadInputError naming each bad setting (values are not repeated: a URL may carry a
    password).
    """
    try:
        return Settings(**overrides)
    except ValidationError as e:
        problems = "; ".join(f"{_setting_name(err['loc'])}: {err['msg']}" for err in e.errors(include_input=False))
        raise BadInputError(f"invalid settings: {problems}") from None


def _setting_name(loc: tuple[Any, ...]) -> str:
    field = str(loc[0]) if loc else "?"
    return f"EMBEDSCOPE_{field.upper()}" if field in Settings.model_fields else field
