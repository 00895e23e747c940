"""FHIR package loader: IG packages (`.tgz` or unpacked `package/` folders) indexed by canonical.

A package directory is what `GREENLIGHT_IG_PACKAGES` names. It may hold, side by side:

- `*.tgz` package archives (as published on packages.fhir.org);
- unpacked packages in the standard `~/.fhir/packages` layout, `<name>#<version>/package/...`;
- any other folder holding a `package/package.json`.

Only the JSON resources at the top of `package/` (the conformance resources) and in
`package/example/` (the IG's example instances) are read. Resources are kept as bytes and parsed
with orjson on first use, so opening all five Greenlight packages (R4 core included) takes well
under a second; the `.index.json` the IG publisher writes is used when present.

Canonical resolution: `resolve("url|version")` returns that version; `resolve("url")` returns the
latest version, unless the caller names a preferred package (validating an IG's own examples
against that IG's own profiles, e.g. PAS 2.0.1 examples against PAS 2.0.1 and not 2.2.1).
"""

from __future__ import annotations

import re
import shutil
import tarfile
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any

import orjson

CONFORMANCE_KINDS = (
    "StructureDefinition",
    "ValueSet",
    "CodeSystem",
    "SearchParameter",
    "OperationDefinition",
)

_VERSION_PART = re.compile(r"(\d+)|([A-Za-z]+)")


class PackageError(Exception):
    """A package archive or folder that cannot be read."""


def version_key(version: str | None) -> tuple[tuple[int, int | str], ...]:
    """A sort key for package and resource versions (`2.2.1` > `2.0.1` > `2.0.1-ballot`)."""
    if not version:
        return ()
    main, _, pre = version.partition("-")
    key: list[tuple[int, int | str]] = []
    for number, word in _VERSION_PART.findall(main):
        key.append((1, int(number)) if number else (0, word))
    # A release sorts after its pre-releases.
    key.append((2, 0) if not pre else (1, pre))
    return tuple(key)


@dataclass(frozen=True)
class IndexEntry:
    """One resource of a package: where it is and what it is."""

    filename: str
    resource_type: str
    id: str | None
    url: str | None
    version: str | None
    example: bool


@dataclass
class FhirPackage:
    """One loaded package: its manifest, its index and its (lazily parsed) resources."""

    name: str
    version: str
    source: Path
    manifest: dict[str, Any]
    entries: list[IndexEntry]
    _raw: dict[str, bytes] = field(repr=False)
    _folder: Path | None = field(default=None, repr=False)
    _parsed: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    @property
    def id(self) -> str:
        """`name#version`, the package's identity in FHIR tooling."""
        return f"{self.name}#{self.version}"

    @property
    def canonical(self) -> str | None:
        value = self.manifest.get("canonical")
        return value if isinstance(value, str) else None

    @property
    def dependencies(self) -> dict[str, str]:
        deps = self.manifest.get("dependencies") or {}
        return {str(k): str(v) for k, v in deps.items()}

    def load(self, filename: str) -> dict[str, Any]:
        """The resource in `filename` (cached; callers must not mutate it)."""
        cached = self._parsed.get(filename)
        if cached is not None:
            return cached
        raw = self._raw.get(filename)
        if raw is None and self._folder is not None:
            raw = (self._folder / filename).read_bytes()
        if raw is None:
            raise KeyError(f"{filename} is not in {self.id}")
        resource: dict[str, Any] = orjson.loads(raw)
        self._parsed[filename] = resource
        return resource

    def examples(self) -> Iterator[tuple[IndexEntry, dict[str, Any]]]:
        """The example instances the IG ships (`package/example/*.json`)."""
        for entry in self.entries:
            if entry.example:
                yield entry, self.load(entry.filename)

    def count(self, resource_type: str) -> int:
        return sum(1 for e in self.entries if e.resource_type == resource_type and not e.example)

    def describe(self) -> str:
        """One line for `greenlight ig list`."""
        counts = ", ".join(
            f"{self.count(kind)} {kind}" for kind in CONFORMANCE_KINDS if self.count(kind)
        )
        examples = sum(1 for e in self.entries if e.example)
        return f"{self.id:40} {counts}, {examples} examples  [{self.source}]"


def package_from_resources(
    name: str, version: str, resources: Iterable[dict[str, Any]], source: Path | None = None
) -> FhirPackage:
    """A package built in memory (tests, or profiles a deployment defines for itself)."""
    files: dict[str, bytes] = {}
    entries: list[IndexEntry] = []
    for index, resource in enumerate(resources):
        filename = f"{resource.get('resourceType')}-{resource.get('id', index)}.json"
        files[filename] = orjson.dumps(resource)
        entries.append(_entry_from_resource(filename, resource, example=False))
    manifest = {"name": name, "version": version}
    return FhirPackage(name, version, source or Path(f"<memory:{name}>"), manifest, entries, files)


def _entry_from_resource(filename: str, resource: dict[str, Any], example: bool) -> IndexEntry:
    url = resource.get("url")
    version = resource.get("version")
    return IndexEntry(
        filename=filename,
        resource_type=str(resource.get("resourceType", "")),
        id=resource.get("id"),
        url=url if isinstance(url, str) else None,
        version=version if isinstance(version, str) else None,
        example=example,
    )


def _entries_from_index(index: dict[str, Any], prefix: str, example: bool) -> list[IndexEntry]:
    entries: list[IndexEntry] = []
    for item in index.get("files", []):
        entries.append(
            IndexEntry(
                filename=prefix + str(item["filename"]),
                resource_type=str(item.get("resourceType", "")),
                id=item.get("id"),
                url=item.get("url"),
                version=item.get("version"),
                example=example,
            )
        )
    return entries


def _relevant(relative: str) -> tuple[bool, bool]:
    """(keep?, example?) for a path relative to `package/`."""
    if not relative.endswith(".json") or relative.rsplit("/", 1)[-1].startswith("."):
        return False, False
    if "/" not in relative:
        return relative != "package.json", False
    folder, _, rest = relative.partition("/")
    return folder == "example" and "/" not in rest, True


def _build(
    source: Path, manifest: dict[str, Any], files: dict[str, bytes], indexes: dict[str, bytes]
) -> FhirPackage:
    entries: list[IndexEntry] = []
    for prefix, example in (("", False), ("example/", True)):
        names = [n for n in files if _relevant(n) == (True, example)]
        index_raw = indexes.get(prefix + ".index.json")
        indexed: set[str] = set()
        if index_raw is not None:
            for entry in _entries_from_index(orjson.loads(index_raw), prefix, example):
                if entry.filename in files:
                    entries.append(entry)
                    indexed.add(entry.filename)
        for name in names:
            if name not in indexed:
                entries.append(_entry_from_resource(name, orjson.loads(files[name]), example))
    package_name = manifest.get("name")
    package_version = manifest.get("version")
    if not isinstance(package_name, str) or not isinstance(package_version, str):
        raise PackageError(f"{source}: package.json has no name or version")
    return FhirPackage(package_name, package_version, source, manifest, entries, files)


def read_tgz(path: Path) -> FhirPackage:
    """Read a package archive (`package/package.json` plus resources)."""
    files: dict[str, bytes] = {}
    indexes: dict[str, bytes] = {}
    manifest: dict[str, Any] | None = None
    try:
        with tarfile.open(path, mode="r:*") as archive:
            for member in archive:
                if not member.isfile() or not member.name.startswith("package/"):
                    continue
                relative = member.name[len("package/") :]
                keep, _example = _relevant(relative)
                is_index = relative in (".index.json", "example/.index.json")
                if not (keep or is_index or relative == "package.json"):
                    continue
                handle = archive.extractfile(member)
                if handle is None:
                    continue
                data = handle.read()
                if relative == "package.json":
                    manifest = orjson.loads(data)
                elif is_index:
                    indexes[relative] = data
                else:
                    files[relative] = data
    except (tarfile.TarError, OSError, orjson.JSONDecodeError) as exc:
        raise PackageError(f"{path}: not a readable FHIR package ({exc})") from exc
    if manifest is None:
        raise PackageError(f"{path}: no package/package.json")
    return _build(path, manifest, files, indexes)


def read_folder(package_dir: Path) -> FhirPackage:
    """Read an unpacked package: `package_dir` is the `package/` folder itself."""
    manifest_path = package_dir / "package.json"
    try:
        manifest = orjson.loads(manifest_path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise PackageError(f"{manifest_path}: {exc}") from exc
    files: dict[str, bytes] = {}
    indexes: dict[str, bytes] = {}
    for sub in ("", "example/"):
        folder = package_dir / sub
        if not folder.is_dir():
            continue
        index = folder / ".index.json"
        if index.is_file():
            indexes[sub + ".index.json"] = index.read_bytes()
        for path in folder.glob("*.json"):
            relative = sub + path.name
            if _relevant(relative)[0]:
                files[relative] = path.read_bytes()
    package = _build(package_dir, manifest, files, indexes)
    return package


def discover(directory: Path) -> list[Path]:
    """Package sources in `directory`: archives and folders holding `package/package.json`."""
    if not directory.is_dir():
        return []
    found: list[Path] = []
    if (directory / "package" / "package.json").is_file():
        found.append(directory / "package")
    for child in sorted(directory.iterdir()):
        if child.is_file() and child.name.endswith((".tgz", ".tar.gz")):
            found.append(child)
        elif child.is_dir() and (child / "package" / "package.json").is_file():
            found.append(child / "package")
    return found


@dataclass(frozen=True)
class Located:
    """A canonical resource found in a package."""

    package: FhirPackage
    entry: IndexEntry

    @property
    def resource(self) -> dict[str, Any]:
        return self.package.load(self.entry.filename)


class PackageRegistry:
    """Every package of a directory, with conformance resources indexed by canonical URL."""

    def __init__(self, packages: Iterable[FhirPackage]) -> None:
        self.packages: list[FhirPackage] = []
        self._by_url: dict[str, list[Located]] = {}
        self._lock = threading.Lock()
        seen: set[str] = set()
        for package in packages:
            if package.id in seen:
                continue
            seen.add(package.id)
            self.packages.append(package)
            for entry in package.entries:
                if entry.example or not entry.url:
                    continue
                self._by_url.setdefault(entry.url, []).append(Located(package, entry))
        for candidates in self._by_url.values():
            candidates.sort(key=lambda c: version_key(c.entry.version), reverse=True)

    @classmethod
    def from_directory(cls, directory: Path) -> PackageRegistry:
        packages: list[FhirPackage] = []
        for source in discover(directory):
            packages.append(read_tgz(source) if source.is_file() else read_folder(source))
        return cls(packages)

    def package(self, name: str, version: str | None = None) -> FhirPackage | None:
        """The package `name` (`version`, or the latest loaded)."""
        matches = [p for p in self.packages if p.name == name]
        if version is not None:
            matches = [p for p in matches if p.version == version]
        if not matches:
            return None
        return max(matches, key=lambda p: version_key(p.version))

    def locate(
        self, canonical: str, resource_type: str | None = None, prefer: FhirPackage | None = None
    ) -> Located | None:
        """Find `url` or `url|version`; unversioned means `prefer`'s copy, else the latest."""
        url, _, version = canonical.partition("|")
        candidates = self._by_url.get(url)
        if not candidates:
            return None
        if resource_type is not None:
            candidates = [c for c in candidates if c.entry.resource_type == resource_type]
            if not candidates:
                return None
        if version:
            for candidate in candidates:
                if candidate.entry.version == version:
                    return candidate
            for candidate in candidates:  # `|2.2` matches 2.2.x
                if (candidate.entry.version or "").startswith(version + "."):
                    return candidate
            return None
        if prefer is not None:
            for candidate in candidates:
                if candidate.package is prefer:
                    return candidate
        return candidates[0]

    def resolve(
        self, canonical: str, resource_type: str | None = None, prefer: FhirPackage | None = None
    ) -> dict[str, Any] | None:
        """The resource with this canonical (`url` or `url|version`), or None."""
        located = self.locate(canonical, resource_type, prefer)
        if located is None:
            return None
        with self._lock:
            return located.resource

    def structure_definition(
        self, canonical: str, prefer: FhirPackage | None = None
    ) -> dict[str, Any] | None:
        return self.resolve(canonical, "StructureDefinition", prefer)

    def value_set(self, canonical: str, prefer: FhirPackage | None = None) -> dict[str, Any] | None:
        return self.resolve(canonical, "ValueSet", prefer)

    def code_system(
        self, canonical: str, prefer: FhirPackage | None = None
    ) -> dict[str, Any] | None:
        return self.resolve(canonical, "CodeSystem", prefer)

    def search_parameter(
        self, canonical: str, prefer: FhirPackage | None = None
    ) -> dict[str, Any] | None:
        return self.resolve(canonical, "SearchParameter", prefer)

    def operation_definition(
        self, canonical: str, prefer: FhirPackage | None = None
    ) -> dict[str, Any] | None:
        return self.resolve(canonical, "OperationDefinition", prefer)

    def canonicals(self, resource_type: str) -> list[str]:
        """Every `url|version` of that type, across packages."""
        found: list[str] = []
        for url, candidates in self._by_url.items():
            for c in candidates:
                if c.entry.resource_type == resource_type:
                    found.append(f"{url}|{c.entry.version}" if c.entry.version else url)
        return sorted(found)


@lru_cache(maxsize=8)
def _cached_registry(directory: str) -> PackageRegistry:
    return PackageRegistry.from_directory(Path(directory))


def load_registry(directory: Path) -> PackageRegistry:
    """The registry of `directory`, read once per process (call `clear_cache()` to re-read)."""
    return _cached_registry(str(directory.resolve()))


def clear_cache() -> None:
    _cached_registry.cache_clear()


def _safe_member(member: tarfile.TarInfo) -> PurePosixPath | None:
    """Where a member may be extracted (inside the target), or None to skip it."""
    path = PurePosixPath(member.name)
    if path.is_absolute() or ".." in path.parts or not (member.isfile() or member.isdir()):
        return None
    return path


def install_package(archive: Path, directory: Path, *, force: bool = False) -> FhirPackage:
    """Unpack `archive` into `directory/<name>#<version>/` (the `~/.fhir/packages` layout)."""
    package = read_tgz(archive)
    target = directory / package.id
    if target.exists():
        if not force:
            raise PackageError(f"{package.id} is already installed in {directory}")
        shutil.rmtree(target)
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory, prefix=".install-") as tmp:
        staging = Path(tmp) / "unpacked"
        staging.mkdir()
        with tarfile.open(archive, mode="r:*") as tar:
            for member in tar:
                relative = _safe_member(member)
                if relative is None or not relative.parts or relative.parts[0] != "package":
                    continue
                destination = staging.joinpath(*relative.parts)
                if member.isdir():
                    destination.mkdir(parents=True, exist_ok=True)
                    continue
                handle = tar.extractfile(member)
                if handle is None:
                    continue
                destination.parent.mkdir(parents=True, exist_ok=True)
                with handle, destination.open("wb") as out:
                    shutil.copyfileobj(handle, out)
        staging.rename(target)
    clear_cache()
    return read_folder(target / "package")
