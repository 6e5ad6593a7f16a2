"""Class 10 of issue 16, the data items: errors that name the file, raised at the entry point.

* an unreadable PNG: ``ValueError`` naming the zip and member (or the file), not PIL's
  ``UnidentifiedImageError`` about ``<_io.BytesIO ...>``;
* an ``all_runs`` zip or folder of another layout: ``ValueError`` naming the source and the
  missing file or malformed line, not a bare ``StopIteration`` or ``KeyError``;
* a read-only ``METALEARN_DATA_DIR``: a failed load refuses up front and writes nothing there
  (nor does a download that fails leave an empty folder behind).
"""

import io
import os
import stat
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from omniglot_files import write_zip
from PIL import Image

from metalearn.data import fsmol, omniglot
from metalearn.data.omniglot import decode, load_omniglot, omniglot_runs


def png(value: int, size: int = 8) -> bytes:
    out = io.BytesIO()
    Image.new("L", (size, size), value).save(out, format="PNG")
    return out.getvalue()


def images(root: str) -> dict[str, bytes]:
    return {
        f"{root}/{alphabet}/character0{c}/0{c}_0{d}.png": png(30 * c + d)
        for alphabet in ("Greek", "Latin")
        for c in (1, 2)
        for d in (1, 2)
    }


BROKEN = {"not an image": b"hello", "truncated": png(7)[:30], "empty": b""}


@pytest.mark.parametrize("broken", BROKEN)
def test_an_unreadable_png_in_a_zip_names_zip_and_member(folders, monkeypatch, broken):
    data, derived = folders
    files = images("images_background_small1")
    member = "images_background_small1/Latin/character02/02_01.png"
    files[member] = BROKEN[broken]
    small = {"images_background_small1": write_zip(data / "images_background_small1.zip", files)}
    small["images_background_small2"] = write_zip(
        data / "images_background_small2.zip", images("images_background_small2")
    )
    monkeypatch.setattr(omniglot, "SMALL", small)
    with pytest.raises(ValueError, match="not a readable PNG") as raised:
        load_omniglot(test_alphabets=1)
    assert str(data / "images_background_small1.zip") in str(raised.value)
    assert member in str(raised.value)
    assert not list(derived.glob("*.pt")), "nothing is cached from a failed decode"


def test_an_unreadable_png_in_a_folder_names_the_file(folders, monkeypatch):
    data, _ = folders
    for name, content in images("images_background").items():
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        (data / name).write_bytes(content)
    bad = data / "images_background/Greek/character01/01_02.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n but nothing else")
    md5 = write_zip(data / "images_evaluation.zip", images("images_evaluation"))
    monkeypatch.setattr(omniglot, "FULL", {"images_background": "-", "images_evaluation": md5})
    with pytest.raises(ValueError, match="not a readable PNG") as raised:
        load_omniglot()
    assert str(bad) in str(raised.value)


def test_decode_names_what_it_was_given():
    with pytest.raises(ValueError, match="some.zip: a/b.png is not a readable PNG"):
        decode(b"junk", "some.zip: a/b.png")


def run_files(prefix: str = "all_runs/") -> dict[str, bytes]:
    files = {}
    for run in range(1, 21):
        base = f"{prefix}run{run:02d}/"
        files[base + "class_labels.txt"] = "\n".join(
            f"run{run:02d}/test/item{i:02d}.png run{run:02d}/training/class{i:02d}.png"
            for i in range(1, 21)
        ).encode()
        for c in range(1, 21):
            files[base + f"training/class{c:02d}.png"] = png(c)
            files[base + f"test/item{c:02d}.png"] = png(c)
    return files


def runs_with(folders, monkeypatch, files) -> Path:
    data, _ = folders
    md5 = write_zip(data / "all_runs.zip", files)
    monkeypatch.setattr(omniglot, "RUNS", {"all_runs": md5})
    return data / "all_runs.zip"


def test_well_formed_runs_load_also_without_a_top_folder(folders, monkeypatch):
    runs_with(folders, monkeypatch, run_files(prefix=""))
    assert omniglot_runs().query_y.shape == (20, 20)


def rename(files: dict[str, bytes], old: str, new: str) -> dict[str, bytes]:
    return {name.replace(old, new): content for name, content in files.items()}


LAYOUTS = {
    "no run01 at all": (lambda f: rename(f, "run01/", "runA/"), "no folder run01/"),
    "runs in two places": (
        lambda f: {**f, "copy/run01/class_labels.txt": b""},
        "run01/ appears under",
    ),
    "a missing image": (
        lambda f: {k: v for k, v in f.items() if k != "all_runs/run05/test/item03.png"},
        "lacks all_runs/run05/test/item03.png",
    ),
    "a missing label file": (
        lambda f: {k: v for k, v in f.items() if k != "all_runs/run20/class_labels.txt"},
        "lacks all_runs/run20/class_labels.txt",
    ),
    "a malformed label line": (
        lambda f: {**f, "all_runs/run02/class_labels.txt": b"run02/test/item01.png class1"},
        "all_runs/run02/class_labels.txt, line 1: got 'run02/test/item01.png class1'",
    ),
    "an item without a label": (
        lambda f: {
            **f,
            "all_runs/run03/class_labels.txt": b"run03/test/item01.png run03/training/class01.png",
        },
        r"run03/class_labels.txt gives no class for the item\(s\) \[2, 3",
    ),
    "an unreadable image": (
        lambda f: {**f, "all_runs/run07/training/class09.png": b"GIF89a"},
        "all_runs/run07/training/class09.png is not a readable PNG",
    ),
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_runs_of_another_layout_name_the_source_and_the_file(folders, monkeypatch, layout):
    change, expected = LAYOUTS[layout]
    source = runs_with(folders, monkeypatch, change(run_files()))
    with pytest.raises(ValueError, match=expected) as raised:
        omniglot_runs()
    assert str(source) in str(raised.value)


def test_runs_as_a_folder_of_another_layout_name_the_folder(folders, monkeypatch):
    data, _ = folders
    (data / "all_runs" / "images").mkdir(parents=True)
    (data / "all_runs" / "images" / "x.png").write_bytes(png(1))
    with pytest.raises(ValueError, match="no folder run01/") as raised:
        omniglot_runs()
    assert str(data / "all_runs") in str(raised.value)


@pytest.fixture
def read_only(tmp_path, monkeypatch):
    """``METALEARN_DATA_DIR`` made read-only (``chmod a-w``); a writable cache elsewhere."""
    shared = tmp_path / "shared"
    (shared / "fsmol").mkdir(parents=True)
    monkeypatch.setenv("METALEARN_DATA_DIR", str(shared))
    monkeypatch.setenv("METALEARN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(
        urllib.request, "urlopen", lambda *a, **k: pytest.fail("no download into a read-only dir")
    )
    folders = [shared, shared / "fsmol"]
    for folder in folders:
        folder.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)
    yield shared
    for folder in folders:
        folder.chmod(stat.S_IRWXU)


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_a_read_only_data_dir_is_never_written_by_a_failed_omniglot_load(read_only):
    before = listing(read_only)
    with pytest.raises(FileNotFoundError, match="read-only") as raised:
        load_omniglot()
    assert str(read_only / "omniglot") in str(raised.value) and "METALEARN_DATA_DIR" in str(
        raised.value
    )
    with pytest.raises(FileNotFoundError, match="read-only"):
        omniglot_runs()
    assert listing(read_only) == before


def test_a_read_only_data_dir_is_never_written_by_a_failed_fsmol_load(read_only):
    before = listing(read_only)
    with pytest.raises(FileNotFoundError, match="read-only") as raised:
        fsmol.extract_full(read_only / "fsmol", md5="0" * 32)
    assert str(read_only / "fsmol") in str(raised.value)
    with pytest.raises(FileNotFoundError, match="METALEARN_DATA_DIR"):
        fsmol.load_fsmol()  # the subset is not there either: nothing written
    assert listing(read_only) == before


def test_a_failed_download_leaves_no_folder_behind(tmp_path, monkeypatch):
    monkeypatch.setenv("METALEARN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("METALEARN_CACHE_DIR", str(tmp_path / "cache"))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(FileNotFoundError, match="could not be downloaded"):
        load_omniglot()
    assert not (tmp_path / "data").exists(), "the failed load created the data folder"
    (tmp_path / "data" / "omniglot").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="could not be downloaded"):
        load_omniglot()
    assert os.listdir(tmp_path / "data" / "omniglot") == [], "no partial file is left"
