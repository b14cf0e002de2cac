"""The one frozen settings object, read from EMBEDSCOPE_* environment variables and an optional .env."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
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

    @field_validator("data_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: Any) -> Any:
        # Accept "a:b" (os.pathsep) or "a,b" from the environment, like PATH.
        if isinstance(value, str):
            parts = [p for chunk in value.split(",") for p in chunk.split(os.pathsep)]
            return tuple(Path(p).expanduser() for p in parts if p.strip())
        return value

    @field_validator("qdrant_url", "qdrant_path", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

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

    def describe_store(self) -> str:
        """A human description of where Qdrant is, never containing the API key or a password."""
        if self.qdrant_url:
            return f"Qdrant server at {redact_url(self.qdrant_url)}"
        if self.embedded_path == ":memory:":
            return "embedded Qdrant Edge (in memory)"
        return f"embedded Qdrant Edge at {self.embedded_path}"


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
