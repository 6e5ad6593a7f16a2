"""Class 1 of issue 16: caches are never trusted blindly.

Every cache under METALEARN_CACHE_DIR (decoded Omniglot images and runs, fingerprints) is
content-addressed, checked on every read and rebuilt -- with a warning naming the file -- when
damaged: bit flips, truncation to half or zero bytes, a writer killed midway, an older format.
"""

import io
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from omniglot_files import write_zip
from PIL import Image

from metalearn.data import cache, omniglot
from metalearn.data import featurize as featurize_module
from metalearn.data.cache import CacheDamaged, cached, load_verified, save_verified, unwrap, wrap
from metalearn.data.featurize import Featurizer, compute, featurize
from metalearn.data.omniglot import decode, load_omniglot, omniglot_runs

SMILES = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "CCN(CC)CC", "C1CC"]


def png(value: int, size: int = 21) -> bytes:
    image = Image.new("L", (size, size), value)
    image.paste(0, (0, 0, size // 2, size // 2))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def alphabet_files(root: str, alphabets: dict[str, int], drawers: int = 2) -> dict[str, bytes]:
    return {
        f"{root}/{alphabet}/character{c:02d}/{a:02d}{c:02d}_{d:02d}.png": png(40 * a + 5 * c)
        for a, (alphabet, characters) in enumerate(alphabets.items())
        for c in range(1, characters + 1)
        for d in range(1, drawers + 1)
    }


def write_small(data: Path, monkeypatch) -> None:
    md5s = {
        name: write_zip(data / f"{name}.zip", alphabet_files(name, alphabets))
        for name, alphabets in (
            ("images_background_small1", {"Greek": 2, "Latin": 2}),
            ("images_background_small2", {"Greek": 2, "Tagalog": 3}),
        )
    }
    monkeypatch.setattr(omniglot, "SMALL", md5s)


def flip_a_bit(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x10]) + data[middle + 1 :]


DAMAGE = {
    "bit flip": flip_a_bit,
    "half": lambda data: data[: len(data) // 2],
    "zero bytes": lambda data: b"",
    "header only": lambda data: data[: len(cache.MAGIC) + 70],
    "no header (an older format)": lambda data: data[data.index(b"\n", len(cache.MAGIC)) + 1 :],
    "garbage": lambda data: os.urandom(len(data)),
}


def same(first, second) -> bool:
    return all(
        torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
        for a, b in zip(first, second)
    ) and [a.class_names for a in first] == [b.class_names for b in second]


@pytest.mark.parametrize("damage", DAMAGE)
def test_damaged_decoded_omniglot_cache_is_rebuilt_with_a_warning(
    folders, monkeypatch, caplog, damage
):
    data, derived = folders
    write_small(data, monkeypatch)
    first = load_omniglot(test_alphabets=1)
    (path,) = derived.glob("*.pt")
    path.write_bytes(DAMAGE[damage](path.read_bytes()))
    with caplog.at_level(logging.WARNING, logger="metalearn.data.cache"):
        again = load_omniglot(test_alphabets=1)
    assert same(first, again), "the rebuilt decode must equal the original"
    assert str(path) in caplog.text and "damaged" in caplog.text
    assert load_verified(path) is not None, "the damaged file is replaced by a good one"
    assert sorted(p.name for p in derived.iterdir()) == [path.name], "no temporary file is left"
    caplog.clear()
    monkeypatch.setattr(omniglot, "decode", lambda *a, **k: pytest.fail("decoded a third time"))
    assert same(first, load_omniglot(test_alphabets=1)) and not caplog.text


def test_an_intact_checksum_over_unusable_content_is_rebuilt(folders, monkeypatch, caplog):
    data, derived = folders
    write_small(data, monkeypatch)
    first = load_omniglot(test_alphabets=1)
    (path,) = derived.glob("*.pt")
    buffer = io.BytesIO()
    torch.save({"images": torch.zeros(3, 28, 28, dtype=torch.uint8)}, buffer)
    save_verified(path, buffer.getvalue())  # a valid checksum, a wrong structure
    with caplog.at_level(logging.WARNING, logger="metalearn.data.cache"):
        again = load_omniglot(test_alphabets=1)
    assert same(first, again) and str(path) in caplog.text


def equal_size_pngs() -> tuple[bytes, bytes]:
    """Two different PNGs of exactly the same byte size."""
    by_size: dict[int, bytes] = {}
    for value in range(40, 250):
        image = png(value)
        if len(image) in by_size and by_size[len(image)] != image:
            return by_size[len(image)], image
        by_size[len(image)] = image
    raise AssertionError("no two PNGs of equal size")


def test_a_folder_source_changed_in_place_to_equal_size_is_decoded_afresh(folders, monkeypatch):
    data, derived = folders
    old, new = equal_size_pngs()
    files = alphabet_files("images_background", {"Greek": 2, "Korean": 1})
    target = sorted(files)[0]
    files[target] = old
    for name, content in files.items():
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        (data / name).write_bytes(content)
    md5 = write_zip(
        data / "images_evaluation.zip", alphabet_files("images_evaluation", {"Ge_ez": 1})
    )
    monkeypatch.setattr(omniglot, "FULL", {"images_background": "-", "images_evaluation": md5})
    before = load_omniglot(rotations=False)[0]
    stat = (data / target).stat()
    (data / target).write_bytes(new)
    os.utime(data / target, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size, same time
    after = load_omniglot(rotations=False)[0]
    assert torch.equal(before.images[0, 0], decode(old))
    assert torch.equal(after.images[0, 0], decode(new)), "served the stale decode"
    assert not torch.equal(before.images, after.images)
    assert len(list(derived.glob("*.pt"))) == 2, "another content, another cache file"


def write_runs(data: Path, monkeypatch) -> None:
    files = {}
    for run in range(1, 21):
        base = f"all_runs/run{run:02d}/"
        lines = [
            f"run{run:02d}/test/item{i:02d}.png run{run:02d}/training/class{21 - i:02d}.png"
            for i in range(1, 21)
        ]
        files[base + "class_labels.txt"] = "\n".join(lines).encode()
        for c in range(1, 21):
            files[base + f"training/class{c:02d}.png"] = png(10 * c, size=8)
            files[base + f"test/item{c:02d}.png"] = png(10 * (21 - c), size=8)
    monkeypatch.setattr(omniglot, "RUNS", {"all_runs": write_zip(data / "all_runs.zip", files)})


@pytest.mark.parametrize("damage", ["bit flip", "half", "zero bytes"])
def test_damaged_runs_cache_is_rebuilt(folders, monkeypatch, caplog, damage):
    data, derived = folders
    write_runs(data, monkeypatch)
    first = omniglot_runs()
    (path,) = derived.glob("*.pt")
    path.write_bytes(DAMAGE[damage](path.read_bytes()))
    with caplog.at_level(logging.WARNING, logger="metalearn.data.cache"):
        again = omniglot_runs()
    assert torch.equal(first.query_x, again.query_x) and torch.equal(first.query_y, again.query_y)
    assert torch.equal(first.query_y[0], torch.arange(19, -1, -1))
    assert str(path) in caplog.text


def features_equal(a, b) -> bool:
    return (
        np.array_equal(a.fingerprints, b.fingerprints)
        and np.array_equal(a.descriptors, b.descriptors)
        and np.array_equal(a.valid, b.valid)
    )


@pytest.mark.parametrize("damage", DAMAGE)
def test_damaged_fingerprint_cache_is_rebuilt_with_a_warning(tmp_path, caplog, damage):
    featurizer = Featurizer(descriptors=("MolWt",))
    first = featurize(SMILES, featurizer, tmp_path, data_key="k")
    (path,) = tmp_path.glob("features-*.npz")
    path.write_bytes(DAMAGE[damage](path.read_bytes()))
    with caplog.at_level(logging.WARNING, logger="metalearn.data.cache"):
        again = featurize(SMILES, featurizer, tmp_path, data_key="k")
    assert features_equal(first, again) and features_equal(again, compute(SMILES, featurizer))
    assert str(path) in caplog.text
    assert load_verified(path) is not None and sorted(tmp_path.iterdir()) == [path]


def test_fingerprint_cache_with_disagreeing_arrays_is_rebuilt(tmp_path, caplog):
    featurize(SMILES[:2], Featurizer(), tmp_path, data_key="k")
    (path,) = tmp_path.glob("features-*.npz")
    buffer = io.BytesIO()  # three SMILES, two rows: what a newline in a SMILES used to write
    np.savez(
        buffer,
        smiles=np.frombuffer(b"CCOc1ccccc1OCC", dtype=np.uint8),
        ends=np.array([3, 12, 14], dtype=np.int64),
        packed=np.zeros((2, 256), np.uint8),
        descriptors=np.zeros((2, 0), np.float32),
        valid=np.ones(2, bool),
    )
    save_verified(path, buffer.getvalue())
    with caplog.at_level(logging.WARNING, logger="metalearn.data.cache"):
        again = featurize(SMILES[:3], Featurizer(), tmp_path, data_key="k")
    assert features_equal(again, compute(SMILES[:3])) and "disagree" in caplog.text


def test_fingerprint_cache_key_covers_settings_data_and_rdkit_version(monkeypatch):
    key = Featurizer().key("md5-a")
    assert Featurizer().key("md5-b") != key and Featurizer(radius=3).key("md5-a") != key
    monkeypatch.setattr(featurize_module.rdkit, "__version__", "1999.01.1")
    assert Featurizer().key("md5-a") != key, "another RDKit may hash molecules another way"


def test_a_writer_killed_midway_leaves_the_old_file_and_no_partial_one(tmp_path, monkeypatch):
    path = tmp_path / "entry.bin"
    save_verified(path, b"old payload")

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        save_verified(path, b"new payload" * 1000)
    assert load_verified(path) == b"old payload" and sorted(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize("damage", DAMAGE)
def test_unwrap_refuses_every_kind_of_damage_naming_the_file(damage):
    data = wrap(b"some payload bytes" * 100)
    assert unwrap(data, "x.bin") == b"some payload bytes" * 100
    with pytest.raises(CacheDamaged, match="x.bin"):
        unwrap(DAMAGE[damage](data), "x.bin")


def test_cached_rebuilds_once_and_survives_an_unwritable_cache(tmp_path, monkeypatch, caplog):
    calls = []

    def build():
        calls.append(1)
        return b"value"

    def identity(value):
        return value

    path = tmp_path / "v.bin"
    assert cached(path, build, identity, identity) == b"value"
    assert cached(path, build, identity, identity) == b"value" and len(calls) == 1

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    path.unlink()
    monkeypatch.setattr(cache, "save_verified", full_disk)
    with caplog.at_level(logging.WARNING, logger="metalearn.data.cache"):
        assert cached(path, build, identity, identity) == b"value"
    assert str(path) in caplog.text and not path.exists()
