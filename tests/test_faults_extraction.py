"""Class 2 of issue 16: a half-finished extraction is never taken for the data set.

Archives are extracted into a temporary folder and renamed into place only when complete:
a refused member, Ctrl-C or a full disk leaves no ``fs-mol/`` (and no temporary folder) behind,
and an older, incomplete extraction beside its archive is refused, naming the folder.
"""

import errno
import gzip
import io
import json
import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest

from metalearn.data import fsmol, md5sum
from metalearn.data.download import EXTRACTED_MARKER, extract_archive
from metalearn.data.fsmol import load_fsmol

ASSAYS = {"train/CHEMBL1": 3, "train/CHEMBL2": 4, "valid/CHEMBL3": 2, "test/CHEMBL4": 5}


def task_file(records: int) -> bytes:
    lines = [
        json.dumps({"SMILES": "C" * (i + 1), "Property": str(float(i % 2)), "AssayType": "B"})
        for i in range(records)
    ]
    return gzip.compress(("\n".join(lines) + "\n").encode())


def members(extra: dict[str, bytes] | None = None) -> dict[str, bytes]:
    files = {f"fs-mol/{name}.jsonl.gz": task_file(n) for name, n in ASSAYS.items()}
    return {**files, **(extra or {})}


def write_tar(path: Path, files: dict[str, bytes]) -> str:
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return md5sum(path)


def small_task_lists() -> dict:
    """FS-Mol's task lists, shrunk to this module's four-assay archive."""
    names = {
        split: [n.split("/")[1] for n in ASSAYS if n.startswith(split)] for split in fsmol.SPLITS
    }
    return {"valid": names["valid"], "test": names["test"], "train_count": 2, "subset": names}


@pytest.fixture
def archive(tmp_path, monkeypatch):
    """``data/fsmol.tar`` with FS-Mol's layout; its md5 recorded as the official one."""
    monkeypatch.setenv("METALEARN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(fsmol, "task_lists", small_task_lists)
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setattr(fsmol, "FULL_ARCHIVE_MD5", write_tar(data / fsmol.FULL_ARCHIVE, members()))
    monkeypatch.setattr(fsmol, "fetch", lambda *a, **k: pytest.fail("nothing to download"))
    return data


def leftovers(data: Path) -> list[str]:
    return sorted(p.name for p in data.iterdir() if p.name != fsmol.FULL_ARCHIVE)


def assert_complete(data) -> None:
    loaded = load_fsmol(data, source="full")
    sizes = {f"{a.split}/{a.name}": len(a) for s in fsmol.SPLITS for a in loaded.split(s)}
    assert sizes == ASSAYS


def fetch_local(url, md5, dest_dir, filename):
    return fsmol.find_local(dest_dir, filename, md5)


def test_a_refused_member_leaves_nothing_extracted(archive, monkeypatch):
    evil = members({"fs-mol/../../escaped.txt": b"outside"})
    monkeypatch.setattr(fsmol, "FULL_ARCHIVE_MD5", write_tar(archive / fsmol.FULL_ARCHIVE, evil))
    monkeypatch.setattr(fsmol, "fetch", fetch_local)
    with pytest.raises(ValueError, match="fsmol.tar.*nothing was extracted"):
        load_fsmol(archive, source="full")
    assert leftovers(archive) == [], "neither fs-mol/ nor a temporary folder may be left"
    assert not (archive / "escaped.txt").exists() and not (archive.parent / "escaped.txt").exists()
    with pytest.raises(ValueError, match="nothing was extracted"):  # "auto" refuses it again
        load_fsmol(archive)
    assert leftovers(archive) == []


@pytest.mark.parametrize(
    "error", [KeyboardInterrupt(), OSError(errno.ENOSPC, "No space left on device")]
)
def test_an_extraction_stopped_part_way_leaves_nothing_and_a_retry_completes(
    archive, monkeypatch, error
):
    monkeypatch.setattr(fsmol, "fetch", fetch_local)
    real_makefile, written = tarfile.TarFile.makefile, []

    def stops_after_two(self, tarinfo, targetpath):
        if len(written) == 2:
            raise error
        written.append(tarinfo.name)
        return real_makefile(self, tarinfo, targetpath)

    monkeypatch.setattr(tarfile.TarFile, "makefile", stops_after_two)
    with pytest.raises(type(error)):
        load_fsmol(archive, source="full")
    assert len(written) == 2, "the extraction did stop part way"
    assert leftovers(archive) == []
    with pytest.raises(type(error)):  # never served as FS-Mol: "auto" extracts again
        load_fsmol(archive)
    assert leftovers(archive) == []
    monkeypatch.setattr(tarfile.TarFile, "makefile", real_makefile)
    assert_complete(archive)
    assert (archive / "fs-mol" / EXTRACTED_MARKER).is_file()
    assert leftovers(archive) == ["fs-mol", fsmol.RECORDED_SHA256]  # its sha256, kept


def manual_extraction(data: Path) -> Path:
    with tarfile.open(data / fsmol.FULL_ARCHIVE) as tar:
        tar.extractall(data, filter="data")
    return data / "fs-mol"


@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_an_incomplete_older_extraction_beside_its_archive_is_refused(archive, damage):
    root = manual_extraction(archive)
    victim = root / "train" / "CHEMBL2.jsonl.gz"
    if damage == "missing":
        victim.unlink()
    else:
        victim.write_bytes(victim.read_bytes()[:10])
    with pytest.raises(ValueError, match="incomplete extraction") as raised:
        load_fsmol(archive)
    assert str(root) in str(raised.value) and "train/CHEMBL2.jsonl.gz" in str(raised.value)


def test_a_complete_manual_extraction_is_used(archive):
    manual_extraction(archive)
    assert_complete(archive)


def test_a_truncated_task_file_without_archive_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("METALEARN_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "fs-mol" / "train" / "CHEMBL1.jsonl.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(task_file(50)[:-12])  # the end of the gzip stream cut off
    with pytest.raises(ValueError, match="not a complete gzip file") as raised:
        load_fsmol(tmp_path)
    assert str(path) in str(raised.value)


def write_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def test_zip_extraction_is_all_or_nothing_too(tmp_path, monkeypatch):
    archive = write_zip(tmp_path / "set.zip", {f"set/{i}.txt": b"x" * i for i in range(5)})
    real, done = zipfile.ZipFile._extract_member, []

    def interrupted(self, member, targetpath, pwd):
        if len(done) == 3:
            raise KeyboardInterrupt
        done.append(member)
        return real(self, member, targetpath, pwd)

    monkeypatch.setattr(zipfile.ZipFile, "_extract_member", interrupted)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        extract_archive(archive, out, "set")
    assert list(out.iterdir()) == []
    monkeypatch.setattr(zipfile.ZipFile, "_extract_member", real)
    root = extract_archive(archive, out, "set")
    assert sorted(p.name for p in root.iterdir()) == [EXTRACTED_MARKER] + [
        f"{i}.txt" for i in range(5)
    ]


def test_an_archive_without_the_folder_or_of_another_kind_is_refused_by_name(tmp_path):
    out = tmp_path / "out"
    archive = write_zip(tmp_path / "other.zip", {"elsewhere/a.txt": b"a"})
    with pytest.raises(ValueError, match="other.zip.*set/"):
        extract_archive(archive, out, "set")
    (tmp_path / "plain.bin").write_bytes(b"neither tar nor zip")
    with pytest.raises(ValueError, match="plain.bin.*neither a tar nor a zip"):
        extract_archive(tmp_path / "plain.bin", out, "set")
    assert list(out.iterdir()) == []


def test_a_folder_another_process_finished_first_is_kept(tmp_path):
    archive = write_zip(tmp_path / "set.zip", {"set/a.txt": b"new"})
    (tmp_path / "out" / "set").mkdir(parents=True)
    (tmp_path / "out" / "set" / "a.txt").write_bytes(b"first")
    assert extract_archive(archive, tmp_path / "out", "set") == tmp_path / "out" / "set"
    assert (tmp_path / "out" / "set" / "a.txt").read_bytes() == b"first"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["set"]


def test_without_a_published_checksum_the_archive_is_checked_by_content_and_its_sha256_kept(
    archive, monkeypatch
):
    monkeypatch.setattr(fsmol, "FULL_ARCHIVE_MD5", None)
    monkeypatch.setattr(fsmol, "fetch", fetch_local_unverified)
    assert_complete(archive)
    recorded = (archive / fsmol.RECORDED_SHA256).read_text().split()[0]
    assert recorded == fsmol.file_digest(archive / fsmol.FULL_ARCHIVE, "sha256")
    # another archive under the same name is refused, and nothing of it is used
    shutil.rmtree(archive / fsmol.FULL_FOLDER)
    write_tar(
        archive / fsmol.FULL_ARCHIVE, members({"fs-mol/train/CHEMBL9.jsonl.gz": task_file(3)})
    )
    with pytest.raises(ValueError, match="sha256 .* was recorded"):
        load_fsmol(archive, source="full")
    assert not (archive / fsmol.FULL_FOLDER).exists()


def test_an_archive_that_is_not_fs_mol_is_refused_by_content(archive, monkeypatch):
    monkeypatch.setattr(fsmol, "FULL_ARCHIVE_MD5", None)
    monkeypatch.setattr(fsmol, "fetch", fetch_local_unverified)
    wrong = {k: v for k, v in members().items() if "test/" not in k}  # the test task is missing
    write_tar(archive / fsmol.FULL_ARCHIVE, wrong)
    with pytest.raises(ValueError, match="lacks 1 of FS-Mol's 1 test tasks"):
        load_fsmol(archive, source="full")
    assert leftovers(archive) == [] and not (archive / fsmol.RECORDED_SHA256).exists()


def test_the_subset_assays_are_picked_from_the_full_set(archive, monkeypatch):
    lists = small_task_lists()
    lists["subset"] = {"train": ["CHEMBL2"], "valid": ["CHEMBL3"], "test": ["CHEMBL4"]}
    monkeypatch.setattr(fsmol, "task_lists", lambda: lists)
    monkeypatch.setattr(fsmol, "fetch", fetch_local)
    loaded = load_fsmol(archive, source="full", assays="subset")
    assert [a.name for a in loaded.split("train")] == ["CHEMBL2"]
    assert loaded.md5.endswith("-subset")


def fetch_local_unverified(url, md5, dest_dir, filename):
    assert md5 is None
    return dest_dir / filename
