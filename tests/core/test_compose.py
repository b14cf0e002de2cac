"""The Docker Compose deployment agrees with the code: settings names, ports, pins, volumes, health."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

from core.config import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):  # "KEY=value" form
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def test_every_embedscope_variable_is_a_setting(compose: dict) -> None:
    fields = {f"{ENV_PREFIX}{name}".upper() for name in Settings.model_fields}
    seen = [name for service in compose["services"].values() for name in _env(service)
            if name.startswith(ENV_PREFIX)]
    assert seen, "the dashboard should be configured through EMBEDSCOPE_* variables"
    assert set(seen) <= fields, f"unknown settings: {sorted(set(seen) - fields)}"


def test_dashboard_points_at_the_qdrant_service(compose: dict) -> None:
    services = compose["services"]
    env = _env(services["dashboard"])
    url = env["EMBEDSCOPE_QDRANT_URL"]
    host, port = re.match(r"^http://([\w.-]+):(\d+)/?$", url).groups()
    assert host == "qdrant" and host in services
    assert port == "6333"
    assert services["dashboard"]["depends_on"]["qdrant"]["condition"] == "service_healthy"
    # The optional API key reaches both sides from the same variable.
    assert "EMBEDSCOPE_QDRANT_API_KEY" in env["EMBEDSCOPE_QDRANT_API_KEY"]
    assert "EMBEDSCOPE_QDRANT_API_KEY" in _env(services["qdrant"])["QDRANT__SERVICE__API_KEY"]


def test_ports_agree(compose: dict) -> None:
    services = compose["services"]
    dash_ports = [str(p) for p in services["dashboard"]["ports"]]
    assert any(p.endswith(":8501") for p in dash_ports)
    assert any(p.endswith(":6333") for p in (str(p) for p in services["qdrant"]["ports"]))
    streamlit_cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert streamlit_cfg["server"]["port"] == 8501
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "EXPOSE 8501" in dockerfile and "--server.port=8501" in dockerfile


def test_images_are_pinned(compose: dict) -> None:
    image = compose["services"]["qdrant"]["image"]
    assert re.fullmatch(r"qdrant/qdrant:v\d+\.\d+\.\d+", image), image
    first_line = next(line for line in (ROOT / "Dockerfile").read_text().splitlines()
                      if line.startswith("FROM "))
    assert ":latest" not in first_line and re.search(r":\d+\.\d+", first_line)


def test_volumes_are_named_and_mounted(compose: dict) -> None:
    declared = set(compose["volumes"])
    mounts = {
        name: [str(v).split(":")[0] for v in service.get("volumes", [])]
        for name, service in compose["services"].items()
    }
    assert any(src in declared for src in mounts["qdrant"]), "Qdrant storage must be a named volume"
    assert any(src in declared for src in mounts["dashboard"]), "uploads/thumbnails need a volume"
    data_dir = _env(compose["services"]["dashboard"])["EMBEDSCOPE_DATA_DIR"]
    assert any(str(v).split(":")[1] == data_dir for v in compose["services"]["dashboard"]["volumes"])


def test_healthchecks_present(compose: dict) -> None:
    for name, path in (("qdrant", "/readyz"), ("dashboard", "/_stcore/health")):
        check = compose["services"][name]["healthcheck"]
        assert path in " ".join(map(str, check["test"])), name
        assert check["interval"] and check["retries"] >= 3


def test_upload_limits_agree() -> None:
    streamlit_cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert streamlit_cfg["server"]["maxUploadSize"] == Settings.model_fields["max_upload_mb"].default
    assert streamlit_cfg["browser"]["gatherUsageStats"] is False


def test_build_context_leaves_out_secrets_and_local_state() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".env", ".venv", ".git", ".embedscope-data"} <= ignored
    dockerfile = (ROOT / "Dockerfile").read_text()
    # torch comes alone from the CPU index before the project (never the CUDA wheels).
    torch_at = dockerfile.index("pip install torch==")
    assert "download.pytorch.org/whl/cpu" in dockerfile[torch_at:].splitlines()[0]
    assert torch_at < dockerfile.index('pip install ".[offline-models]"')
    assert "USER " in dockerfile  # the dashboard does not run as root
