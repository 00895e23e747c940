"""The FHIR package loader: archives and unpacked folders, canonical resolution, `greenlight ig`."""

from __future__ import annotations

import io
import shutil
import tarfile
import time
from pathlib import Path

import orjson
import pytest

from app.cli import build_parser
from app.config import Settings
from app.fhir.packages import (
    PackageError,
    PackageRegistry,
    discover,
    install_package,
    package_from_resources,
    version_key,
)
from tests.conftest import FHIR_PACKAGES
from tests.fhir.conftest import CRD_201, DTR_201, PAS_201, PAS_221

PAS = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"
EXPECTED = {"hl7.fhir.r4.core#4.0.1", CRD_201, DTR_201, PAS_201, PAS_221}


def test_loads_all_five_packages_in_under_three_seconds() -> None:
    started = time.perf_counter()
    registry = PackageRegistry.from_directory(FHIR_PACKAGES)
    elapsed = time.perf_counter() - started
    assert {p.id for p in registry.packages} == EXPECTED
    assert elapsed < 3.0, f"loading took {elapsed:.2f} s"


def test_igs_list_matches_the_packages_loaded(registry: PackageRegistry) -> None:
    listed = orjson.loads(
        (Path(__file__).resolve().parents[2] / "igs" / "packages.json").read_bytes()
    )
    assert {p["id"] for p in listed["packages"]} == {p.id for p in registry.packages}


def test_canonical_resolution_by_version(registry: PackageRegistry) -> None:
    latest = registry.locate(PAS + "profile-claim")
    assert latest is not None and latest.package.id == PAS_221
    older = registry.locate(PAS + "profile-claim|2.0.1")
    assert older is not None and older.package.id == PAS_201
    assert registry.locate(PAS + "profile-claim|9.9.9") is None
    pas201 = registry.package("hl7.fhir.us.davinci-pas", "2.0.1")
    preferred = registry.locate(PAS + "profile-claim", prefer=pas201)
    assert preferred is not None and preferred.package is pas201
    assert registry.locate(PAS + "profile-claim|2.2") is latest  # a major.minor prefix


def test_typed_lookups(registry: PackageRegistry) -> None:
    claim = registry.structure_definition("http://hl7.org/fhir/StructureDefinition/Claim")
    assert claim is not None and claim["version"] == "4.0.1"
    assert registry.value_set("http://hl7.org/fhir/ValueSet/bundle-type") is not None
    assert registry.code_system("http://hl7.org/fhir/bundle-type") is not None
    assert registry.search_parameter("http://hl7.org/fhir/SearchParameter/Claim-patient")
    submit = registry.operation_definition(
        "http://hl7.org/fhir/us/davinci-pas/OperationDefinition/Claim-submit"
    )
    assert submit is not None and submit["code"] == "submit"
    assert registry.value_set(PAS + "profile-claim") is None  # wrong type
    assert f"{PAS}profile-claim|2.0.1" in registry.canonicals("StructureDefinition")


def test_examples_are_indexed_apart(registry: PackageRegistry) -> None:
    pas = registry.package("hl7.fhir.us.davinci-pas", "2.2.1")
    assert pas is not None
    names = [entry.filename for entry, _resource in pas.examples()]
    assert "example/Bundle-ReferralAuthorizationBundleExample.json" in names
    assert len(names) == 47
    assert all(entry.example for entry in pas.entries if entry.filename.startswith("example/"))


def test_version_ordering() -> None:
    versions = ["2.0.1", "2.2.1", "2.0.1-ballot", "10.0.0", "2.2.0"]
    assert sorted(versions, key=version_key) == [
        "2.0.1-ballot",
        "2.0.1",
        "2.2.0",
        "2.2.1",
        "10.0.0",
    ]


def test_install_unpacks_into_the_standard_layout(tmp_path: Path) -> None:
    installed = install_package(FHIR_PACKAGES / "davinci_pas_2.2.1.tgz", tmp_path)
    assert installed.id == PAS_221
    folder = tmp_path / "hl7.fhir.us.davinci-pas#2.2.1" / "package"
    assert (folder / "package.json").is_file()
    assert (folder / "example" / "Bundle-ReferralAuthorizationBundleExample.json").is_file()
    assert discover(tmp_path) == [folder]
    registry = PackageRegistry.from_directory(tmp_path)
    assert [p.id for p in registry.packages] == [PAS_221]
    assert registry.structure_definition(PAS + "profile-claim") is not None
    with pytest.raises(PackageError, match="already installed"):
        install_package(FHIR_PACKAGES / "davinci_pas_2.2.1.tgz", tmp_path)
    install_package(FHIR_PACKAGES / "davinci_pas_2.2.1.tgz", tmp_path, force=True)


def test_unpacked_and_archived_copies_are_not_loaded_twice(tmp_path: Path) -> None:
    install_package(FHIR_PACKAGES / "davinci-crd-2.0.1.tgz", tmp_path)
    shutil.copy(FHIR_PACKAGES / "davinci-crd-2.0.1.tgz", tmp_path)
    registry = PackageRegistry.from_directory(tmp_path)
    assert [p.id for p in registry.packages] == [CRD_201]


def _archive(path: Path, members: dict[str, bytes]) -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(buffer.getvalue())
    return path


def test_install_refuses_archives_without_a_manifest(tmp_path: Path) -> None:
    bad = _archive(tmp_path / "bad.tgz", {"package/x.json": b"{}"})
    with pytest.raises(PackageError, match=r"package\.json"):
        install_package(bad, tmp_path / "cache")
    with pytest.raises(PackageError, match="not a readable"):
        install_package(_archive_text(tmp_path / "junk.tgz"), tmp_path / "cache")


def _archive_text(path: Path) -> Path:
    path.write_bytes(b"this is not a tarball")
    return path


def test_install_never_writes_outside_the_package_folder(tmp_path: Path) -> None:
    manifest = orjson.dumps({"name": "evil.pkg", "version": "1.0.0"})
    archive = _archive(
        tmp_path / "evil.tgz",
        {
            "package/package.json": manifest,
            "package/../../escaped.json": b"{}",
            "/abs.json": b"{}",
        },
    )
    install_package(archive, tmp_path / "cache")
    assert not (tmp_path / "escaped.json").exists()
    assert (tmp_path / "cache" / "evil.pkg#1.0.0" / "package" / "package.json").is_file()


def test_in_memory_packages_take_part_in_resolution() -> None:
    profile = {
        "resourceType": "StructureDefinition",
        "id": "x",
        "url": "http://example.org/StructureDefinition/x",
        "version": "0.1.0",
    }
    registry = PackageRegistry([package_from_resources("example.local", "0.1.0", [profile])])
    assert registry.structure_definition("http://example.org/StructureDefinition/x") == profile


def test_cli_ig_list_and_install(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    settings = Settings.model_validate({"ig_packages": tmp_path})
    args = parser.parse_args(["ig", "install", str(FHIR_PACKAGES / "davinci_dtr_2.0.1.tgz")])
    assert args.handler(args, settings) == 0
    assert args.handler(args, settings) == 1  # already there
    args = parser.parse_args(["ig", "list"])
    assert args.handler(args, settings) == 0
    out = capsys.readouterr().out
    assert "installed hl7.fhir.us.davinci-dtr#2.0.1" in out
    assert DTR_201 in out and "StructureDefinition" in out and "examples" in out
    listed = Settings.model_validate({"ig_packages": FHIR_PACKAGES})
    assert args.handler(args, listed) == 0
    listing = capsys.readouterr().out
    assert all(package in listing for package in EXPECTED)
