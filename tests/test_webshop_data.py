"""WebShop's data files: the published sizes and SHA-256 that fetched copies must match, and WebShop's
real attribute file (`items_ins_v2_1000.json`, from the data mirror) through rro's loader and reward.

The mirror is the folder RRO_DATA_MIRROR names (`../shared/data` in this workplace). Without it the
tests that read the real file skip, unless RRO_REQUIRE_DATA_MIRROR=1 (CI sets it) makes them fail.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from rro.envs.webshop.catalog import ATTRIBUTE_FILES, HUMAN_INSTRUCTIONS_FILE, PRODUCT_FILES, Product, read_attribute_annotations
from rro.envs.webshop.reward import attribute_reward
from rro.fetch import DataError, ensure_file, require_cached, sha256_of

ATTRIBUTES = ATTRIBUTE_FILES["1000"]


@pytest.fixture
def fresh_home(rro_home, tmp_path, monkeypatch) -> Path:
    """An empty RRO_HOME (the session's holds the fixture catalogue under the same names) and no mirror."""
    monkeypatch.setenv("RRO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RRO_DATA_MIRROR", raising=False)
    return tmp_path / "home"


@pytest.fixture(scope="module")
def real_attribute_file(rro_home) -> Path:
    """WebShop's published `items_ins_v2_1000.json` in the data mirror."""
    mirror = os.environ.get("RRO_DATA_MIRROR")
    candidates = [Path(mirror) / "webshop" / ATTRIBUTES.name, Path(mirror) / ATTRIBUTES.name] if mirror else []
    found = next((path for path in candidates if path.exists()), None)
    if found is None:
        reason = f"WebShop's {ATTRIBUTES.name} is not in the data mirror (RRO_DATA_MIRROR={mirror or 'unset'})"
        if os.environ.get("RRO_REQUIRE_DATA_MIRROR") == "1":
            pytest.fail(f"RRO_REQUIRE_DATA_MIRROR=1 but {reason}")
        pytest.skip(reason)
    return found


def test_the_small_files_are_pinned_to_their_published_sizes_and_checksums():
    assert (PRODUCT_FILES["1000"].size, PRODUCT_FILES["1000"].sha256) == (
        4_467_013, "30a4765c3a327af72d9a9a95a6b2486d516f0fa1d3ecd83681901ce82a21b269")
    assert (ATTRIBUTES.size, ATTRIBUTES.sha256) == (147_099, "f88a36314a397b53b3d9c3fa5878e5f7b26d35019a51ec83fbedeca61a948f6f")
    assert (HUMAN_INSTRUCTIONS_FILE.size, HUMAN_INSTRUCTIONS_FILE.sha256) == (
        5_137_548, "cf78667548a71786e1d9049c24b802e48e1084ad4bb021cae56ce1f6d96954a3")
    # the full catalogue's files have no published checksum: they are only checked to be JSON
    assert PRODUCT_FILES["full"].sha256 is None and ATTRIBUTE_FILES["full"].sha256 is None


def test_the_real_attribute_file_matches_the_pin_and_is_cached(real_attribute_file, fresh_home):
    assert real_attribute_file.stat().st_size == ATTRIBUTES.size and sha256_of(real_attribute_file) == ATTRIBUTES.sha256
    installed = ensure_file(ATTRIBUTES, real_attribute_file.parent)
    assert installed == fresh_home / "data" / "webshop" / ATTRIBUTES.name
    assert require_cached(ATTRIBUTES) == installed


def test_a_corrupted_copy_is_refused(real_attribute_file, fresh_home, tmp_path):
    mirror = tmp_path / "mirror" / "webshop"
    mirror.mkdir(parents=True)
    corrupted = bytearray(real_attribute_file.read_bytes())
    corrupted[1000] ^= 0x01  # one bit: same size, another checksum
    (mirror / ATTRIBUTES.name).write_bytes(bytes(corrupted))
    with pytest.raises(DataError) as refused:
        ensure_file(ATTRIBUTES, mirror.parent)
    message = str(refused.value)
    assert message.startswith(f"{ATTRIBUTES.name}: checksum mismatch: expected 147,099 bytes with sha256 {ATTRIBUTES.sha256}, got sha256 ")
    assert str(mirror / ATTRIBUTES.name) in message and "rro data fetch webshop" in message
    assert not (fresh_home / "data" / "webshop" / ATTRIBUTES.name).exists()  # nothing was installed

    (mirror / ATTRIBUTES.name).write_bytes(bytes(corrupted[:-10]))  # cut short: refused by its size
    with pytest.raises(DataError, match="expected 147,099 bytes with sha256 f88a36.*, got 147,089 bytes"):
        ensure_file(ATTRIBUTES, mirror.parent)

    # a good copy is cached; if it is damaged there later, loading says so and what to do
    shutil.copy(real_attribute_file, mirror / ATTRIBUTES.name)
    cached = ensure_file(ATTRIBUTES, mirror.parent)
    cached.write_bytes(bytes(corrupted))
    with pytest.raises(DataError, match=f"{cached} is corrupt .*expected 147,099 bytes.*Delete it and run `rro data fetch webshop`"):
        require_cached(ATTRIBUTES)


def test_other_files_than_the_published_ones_are_refused(fresh_home, tmp_path):
    """The fixture catalogue has WebShop's file names and format but other contents."""
    fixture = Path(__file__).parent / "data" / "webshop"
    for remote in (PRODUCT_FILES["1000"], HUMAN_INSTRUCTIONS_FILE):
        size = (fixture / remote.name).stat().st_size
        with pytest.raises(DataError, match=f"{remote.name}: checksum mismatch: expected {remote.size:,} bytes with "
                                            f"sha256 {remote.sha256}, got {size:,} bytes"):
            ensure_file(remote, fixture)


def test_fetch_refuses_them_through_the_cli(fresh_home):
    from typer.testing import CliRunner

    from rro.cli import app

    fixture = Path(__file__).parent / "data" / "webshop"
    refused = CliRunner().invoke(app, ["data", "fetch", "webshop", "--from", str(fixture)])
    assert refused.exit_code == 1
    output = " ".join(refused.output.split())  # rich wraps long lines
    assert "items_shuffle_1000.json: checksum mismatch: expected 4,467,013 bytes" in output
    assert "The copy refused is" in output and "rro data fetch webshop" in output


def test_every_annotation_of_the_real_file_parses(real_attribute_file):
    raw = json.loads(real_attribute_file.read_text())
    annotations = read_attribute_annotations(real_attribute_file)
    assert len(raw) == len(annotations) == 1000  # every ASIN carries an "attributes" list
    assert sum(1 for values in annotations.values() if values) == 815  # 185 are empty lists
    instructions = {asin: entry["instruction_attributes"] for asin, entry in raw.items() if "instruction_attributes" in entry}
    assert len(instructions) == 415
    # each instruction's attributes are among its product's annotations: all of them match
    for asin, wanted in instructions.items():
        assert attribute_reward(_annotated(annotations[asin]), {"attributes": wanted}) == (1.0, len(wanted))


def test_bad_annotation_files_are_refused_by_asin(tmp_path):
    bad = tmp_path / "items_ins_v2_1000.json"
    bad.write_text(json.dumps({"B000000001": {"attributes": ["cotton"]}, "B000000002": {"attributes": "cotton"}}))
    with pytest.raises(ValueError, match="the attributes of B000000002 are not a list of strings"):
        read_attribute_annotations(bad)
    bad.write_text(json.dumps(["B000000001"]))
    with pytest.raises(ValueError, match="should map ASINs to annotations"):
        read_attribute_annotations(bad)


def _annotated(attributes: list[str], **text) -> Product:
    """A product with these annotations and, unless given, no title, features or description."""
    fields = dict(asin="B0X", title="", description="", bullet_points=[], price_tag="$1.0", pricing=[1.0], options={},
                  attributes=attributes, category="", query="", product_category="")
    return Product(**{**fields, **text})


def test_attribute_reward_on_real_annotations(real_attribute_file):
    """Hand-checked products: thefuzz's token set ratio, > 85 to match, as upstream."""
    annotations = read_attribute_annotations(real_attribute_file)
    jeans = _annotated(annotations["B07GYWW3NY"])  # ['straight leg', 'machine washable']
    # "machine wash" scores 86 with "machine washable"; "easy care" has no annotation near it
    assert attribute_reward(jeans, {"attributes": ["machine wash", "straight leg", "easy care"]}) == (2 / 3, 2)
    charger = annotations["B089ZJ7H1N"]  # ['wireless charging', 'heavy duty']
    # "wireless charger" scores exactly 85 with "wireless charging": no match ...
    assert attribute_reward(_annotated(charger), {"attributes": ["wireless charger"]}) == (0, 0)
    # ... unless the title says it
    assert attribute_reward(_annotated(charger, title="Wireless Charger Stand"), {"attributes": ["wireless charger"]}) == (1, 1)
    shoes = _annotated(annotations["B06Y52T6KC"])  # ['shoes women', 'rubber sole']
    # token sets: "shoes men" scores 90 with "shoes women" and "rubber outsole" 88 with "rubber sole"
    assert attribute_reward(shoes, {"attributes": ["shoes men", "rubber outsole"]}) == (1, 2)
    care = _annotated(annotations["B0859PP21L"])  # ['easy care', 'quality materials', 'polyester spandex']
    assert attribute_reward(care, {"attributes": ["easy carry"]}) == (0, 0)  # 84
    assert attribute_reward(_annotated(annotations["B08GFNJN5R"]), {"attributes": ["cotton"]}) == (0, 0)  # no annotations
