"""A store written by the previous layout: the dashboard says so and offers Migrate, which runs the
same step as `embedscope migrate` and then shows the data."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

from core.config import Settings
from tests.app.conftest import run_page

LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_v1" / "legacy-edge.tar.gz"


def test_an_outdated_store_offers_migrate_and_migrating_opens_it(app_env: Settings, tmp_path: Path) -> None:
    with tarfile.open(LEGACY) as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    shutil.move(tmp_path / "unpacked" / "store", app_env.embedded_path)

    at = run_page("Home.py").run()
    assert not at.exception
    assert len(at.warning) == 1 and "embedscope migrate" in at.warning[0].value
    at.button(key="_migrate_store").click().run()
    assert not at.exception and not at.warning, [w.value for w in at.warning]

    from core.store import open_store
    from core.store.schema import SCHEMA_VERSION

    store = open_store(app_env)
    try:
        assert store.schema_version() == SCHEMA_VERSION and store.list_projects() == ["legacy"]
    finally:
        store.close()


def test_a_store_of_a_newer_layout_is_an_error_without_migrate(app_env: Settings) -> None:
    from core.store import open_store
    from core.store.schema import SCHEMA_VERSION

    store = open_store(app_env)
    store.write_schema_version(SCHEMA_VERSION + 1)
    store.close()
    at = run_page("Home.py").run()
    assert not at.exception and len(at.error) == 1 and "newer embedscope" in at.error[0].value
    assert not [b for b in at.button if b.key == "_migrate_store"]
