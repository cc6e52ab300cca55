"""Shared fixtures: a private RRO_HOME for the session, the real data (from the mirror in
RRO_DATA_MIRROR, or fetched), and a real MariaDB server when the MariaDB tests run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WORKPLACE_MIRROR = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def rro_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("rro-home")
    os.environ["RRO_HOME"] = str(home)
    if not os.environ.get("RRO_DATA_MIRROR") and WORKPLACE_MIRROR.exists():
        os.environ["RRO_DATA_MIRROR"] = str(WORKPLACE_MIRROR)
    from rro.envs.intercode_sql.dataset import DUMP_FILE, TASKS_FILE
    from rro.fetch import ensure_file

    for remote in (TASKS_FILE, DUMP_FILE):
        ensure_file(remote)
    return home


@pytest.fixture(scope="session")
def mariadb_server(rro_home):
    from rro.envs.intercode_sql import mariadb_backend
    from rro.envs.intercode_sql.dataset import DUMP_FILE
    from rro.fetch import require_cached

    if not mariadb_backend.is_installed():
        if os.environ.get("RRO_REQUIRE_MARIADB") == "1":
            pytest.fail("RRO_REQUIRE_MARIADB=1 but MariaDB is not installed (apt-get install -y mariadb-server)")
        pytest.skip("MariaDB is not installed (apt-get install -y mariadb-server)")
    paths = mariadb_backend.up(require_cached(DUMP_FILE))
    yield paths
    mariadb_backend.down()


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def backend(request) -> str:
    """Runs a test once per backend."""
    if request.param == "mariadb":
        request.getfixturevalue("mariadb_server")
    return request.param


@pytest.fixture(scope="session")
def tiny_policy(rro_home):
    """The tiny random model (SmolLM2's tokenizer and template, two small layers), in float32."""
    from rro.policy.hf import HFPolicy

    return HFPolicy("tiny-random", dtype="float32")


WEBSHOP_FIXTURE = Path(__file__).parent / "data" / "webshop"


@pytest.fixture(scope="module")
def webshop_catalog(rro_home):
    """The fixture catalogue (tests/data/webshop, written for the tests in WebShop's format) installed
    as the 1000-product set. Its files are not WebShop's published ones, so while the module runs,
    the data files are pinned to the fixture's own sizes and checksums instead."""
    from dataclasses import replace

    from rro.envs.webshop import catalog
    from rro.fetch import ensure_file, sha256_of

    def pinned_to_fixture(remote):
        path = WEBSHOP_FIXTURE / remote.name
        return replace(remote, size=path.stat().st_size, sha256=sha256_of(path))

    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(catalog.PRODUCT_FILES, "1000", pinned_to_fixture(catalog.PRODUCT_FILES["1000"]))
        patch.setitem(catalog.ATTRIBUTE_FILES, "1000", pinned_to_fixture(catalog.ATTRIBUTE_FILES["1000"]))
        patch.setattr(catalog, "HUMAN_INSTRUCTIONS_FILE", pinned_to_fixture(catalog.HUMAN_INSTRUCTIONS_FILE))
        for remote in catalog.data_files("1000"):
            ensure_file(remote, source=WEBSHOP_FIXTURE)
        yield catalog.load_catalog("1000")
