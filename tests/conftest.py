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


def forget_webshop_catalogues() -> None:
    """Drop the catalogues and search engines this process has loaded (they are cached per size)."""
    from rro.envs.webshop import catalog, env

    catalog.load_catalog.cache_clear()
    env.search_engine.cache_clear()


@pytest.fixture(scope="module")
def webshop_catalog(rro_home):
    """The fixture catalogue (tests/data/webshop, written for the tests in WebShop's format: upstream's
    product file, attribute file and human instructions) installed as the 1000-product set. Its
    files are not WebShop's published ones, so while the module runs, the data files are pinned to
    the fixture's own sizes and checksums instead. Its attribute file holds no synthetic
    instructions: its goals are its human ones, made the default while the module runs."""
    from dataclasses import replace

    from rro.envs.webshop import catalog
    from rro.fetch import ensure_file, sha256_of

    def pinned_to_fixture(remote):
        path = WEBSHOP_FIXTURE / remote.name
        return replace(remote, size=path.stat().st_size, sha256=sha256_of(path))

    forget_webshop_catalogues()
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(catalog.PRODUCT_FILES, "1000", pinned_to_fixture(catalog.PRODUCT_FILES["1000"]))
        patch.setitem(catalog.ATTRIBUTE_FILES, "1000", pinned_to_fixture(catalog.ATTRIBUTE_FILES["1000"]))
        patch.setattr(catalog, "HUMAN_INSTRUCTIONS_FILE", pinned_to_fixture(catalog.HUMAN_INSTRUCTIONS_FILE))
        patch.setitem(catalog.DEFAULT_GOALS, "1000", "human")
        for remote in (catalog.PRODUCT_FILES["1000"], catalog.ATTRIBUTE_FILES["1000"], catalog.HUMAN_INSTRUCTIONS_FILE):
            ensure_file(remote, source=WEBSHOP_FIXTURE)
        yield catalog.load_catalog("1000")
    forget_webshop_catalogues()


@pytest.fixture(scope="module")
def real_webshop(tmp_path_factory):
    """WebShop's real 1000-product catalogue (`documents_1k.jsonl` and `items_ins_v2_1000.json`) from the
    data mirror, in an RRO_HOME of its own. Without the mirror the tests skip, unless
    RRO_REQUIRE_DATA_MIRROR=1 (CI sets it) makes them fail."""
    from rro.envs.webshop import catalog

    mirror = os.environ.get("RRO_DATA_MIRROR")
    needed = [catalog.DOCUMENT_FILES["1000"].name, catalog.ATTRIBUTE_FILES["1000"].name]
    if not mirror or not all((Path(mirror) / "webshop" / name).exists() for name in needed):
        reason = f"WebShop's {' and '.join(needed)} are not in the data mirror (RRO_DATA_MIRROR={mirror or 'unset'})"
        if os.environ.get("RRO_REQUIRE_DATA_MIRROR") == "1":
            pytest.fail(f"RRO_REQUIRE_DATA_MIRROR=1 but {reason}")
        pytest.skip(reason)
    forget_webshop_catalogues()
    with pytest.MonkeyPatch.context() as patch:
        # its own home: the fixture catalogue's files, installed under the same names, stay apart
        patch.setenv("RRO_HOME", str(tmp_path_factory.mktemp("real-webshop-home")))
        yield catalog.load_catalog("1000")
    forget_webshop_catalogues()


def run_in_terminal(args: list[str], cwd: Path, timeout: float = 900) -> tuple[int, str]:
    """Run a command on a pseudo-terminal, as a user's shell would (progress bars draw as they do
    there), and return its exit status and everything it wrote."""
    import fcntl
    import select
    import struct
    import subprocess
    import termios
    import time

    from rro.terminal import _QUIET_ENVIRONMENT

    # The command must quiet the libraries itself: drop the switches an earlier in-process CLI test set.
    env = {k: v for k, v in os.environ.items() if k not in _QUIET_ENVIRONMENT}
    env.update(TERM="xterm-256color", COLUMNS="160", LINES="50")
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
    process = subprocess.Popen(args, stdin=follower, stdout=follower, stderr=follower, cwd=cwd, env=env,
                               close_fds=True)
    os.close(follower)
    output, deadline = bytearray(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        if select.select([leader], [], [], 1.0)[0]:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the command ended and closed the terminal
                break
            if not chunk:
                break
            output += chunk
        elif process.poll() is not None:
            break
    else:
        process.kill()
    os.close(leader)
    return process.wait(), output.decode("utf-8", errors="replace")


# A whole `rro run` with the tiny model, small enough for the suite: RRO's rising walks (candidates
# to browse) and IPR (whose exact `submit` values make pairs, so that DPO runs too).
TINY_CLI_RUN = """
output = "{output}"
model = "tiny-random"
strategies = ["rising", "ipr"]
report_to = "tensorboard"  # every stage's figures, read back by tests/test_tracking.py

[experts]
limit = 4

[sft]
limit = 4
epochs = 1
batch_size = 2
gradient_accumulation_steps = 1
precision = "fp32"
activation_checkpointing = false

[eval]
limit = 2
max_steps = 2
max_new_tokens = 12
dtype = "float32"

[explore]
limit = 2
rollouts = 1
max_candidates = 2
max_steps = 6  # the expert reaches `submit` within 6 turns: IPR values it exactly
max_new_tokens = 12
dtype = "float32"

[dpo]
epochs = 1
precision = "fp32"
activation_checkpointing = false
"""


@pytest.fixture(scope="session")
def cli_run(rro_home, tmp_path_factory) -> tuple[Path, int, str]:
    """`rro run` of the tiny pipeline through the real command line, on a terminal: the run
    directory, the exit status and the terminal's output."""
    import sys

    folder = tmp_path_factory.mktemp("cli-run")
    config = folder / "run.toml"
    config.write_text(TINY_CLI_RUN.format(output=folder / "run"))
    status, output = run_in_terminal([sys.executable, "-m", "rro.cli", "run", str(config)], cwd=folder)
    (folder / "terminal.txt").write_text(output)  # what the user saw, for a failing test's reader
    return folder / "run", status, output
