import shutil

import pytest

from rro.envs.intercode_sql.dataset import TASKS_FILE
from rro.fetch import DataError, ensure_file, require_cached, sha256_of


@pytest.fixture
def fresh_home(rro_home, tmp_path, monkeypatch):
    """An empty RRO_HOME and no mirror; returns a mirror folder holding a good copy of the tasks."""
    mirror = tmp_path / "mirror"
    (mirror / "intercode-sql").mkdir(parents=True)
    shutil.copy(rro_home / "data" / "intercode-sql" / TASKS_FILE.name, mirror / "intercode-sql" / TASKS_FILE.name)
    monkeypatch.setenv("RRO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RRO_DATA_MIRROR", raising=False)
    return mirror


def test_mirror_copy_is_verified_and_cached(fresh_home, tmp_path):
    path = ensure_file(TASKS_FILE, fresh_home)
    assert path == tmp_path / "home" / "data" / "intercode-sql" / TASKS_FILE.name
    assert sha256_of(path) == TASKS_FILE.sha256
    shutil.rmtree(fresh_home)  # once cached, the mirror is no longer needed
    assert require_cached(TASKS_FILE) == path


def test_corrupt_mirror_file_is_refused(fresh_home, tmp_path):
    (fresh_home / "intercode-sql" / TASKS_FILE.name).write_text("[]")
    with pytest.raises(DataError, match="checksum mismatch"):
        ensure_file(TASKS_FILE, fresh_home)
    assert not (tmp_path / "home" / "data" / "intercode-sql" / TASKS_FILE.name).exists()


def test_file_missing_from_mirror(fresh_home, tmp_path):
    with pytest.raises(DataError, match="not in the mirror"):
        ensure_file(TASKS_FILE, tmp_path)


def test_unfetched_file_says_how_to_fetch(fresh_home):
    with pytest.raises(DataError, match="rro data fetch intercode-sql"):
        require_cached(TASKS_FILE)


def test_corrupt_cache_is_reported(fresh_home, tmp_path):
    cached = tmp_path / "home" / "data" / "intercode-sql" / TASKS_FILE.name
    cached.parent.mkdir(parents=True)
    cached.write_text("not the file")
    with pytest.raises(DataError, match="corrupt"):
        require_cached(TASKS_FILE)
