"""metalearn.data.omniglot: the loader on fixture zips in the official layout, and on the
shared data."""

import io
import os
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch
from omniglot_files import write_zip
from PIL import Image

from metalearn.data import omniglot
from metalearn.data.omniglot import decode, load_omniglot, omniglot_runs


def png(value: int, size: int = 105, mark: bool = False) -> bytes:
    """A grey ``size`` x ``size`` PNG of ``value``; ``mark`` paints the top-left quarter black
    (a stroke)."""
    image = Image.new("L", (size, size), value)
    if mark:
        image.paste(0, (0, 0, size // 2, size // 2))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def alphabet_files(root: str, alphabets: dict[str, int], drawers: int = 3) -> dict[str, bytes]:
    """``root/<alphabet>/characterNN/<id>_<drawer>.png``; each character has its own grey level."""
    files = {}
    for a, (alphabet, characters) in enumerate(alphabets.items()):
        for c in range(1, characters + 1):
            for d in range(1, drawers + 1):
                files[f"{root}/{alphabet}/character{c:02d}/{a:02d}{c:02d}_{d:02d}.png"] = png(
                    40 * a + 5 * c, size=21, mark=True
                )
    return files


SMALL1 = {"Greek": 3, "Latin": 2, "Balinese": 2}
SMALL2 = {"Greek": 3, "Latin": 2, "Tagalog": 4}


def write_small(data: Path, monkeypatch) -> None:
    md5s = {
        name: write_zip(data / f"{name}.zip", alphabet_files(name, alphabets))
        for name, alphabets in (
            ("images_background_small1", SMALL1),
            ("images_background_small2", SMALL2),
        )
    }
    monkeypatch.setattr(omniglot, "SMALL", md5s)


def test_decode_resizes_antialiased_and_makes_strokes_bright():
    image = decode(png(255, mark=True))
    assert image.shape == (28, 28) and image.dtype == torch.uint8
    assert image[:10, :10].min() == 255 and image[18:, 18:].max() == 0
    assert 0 < image[13, 5] < 255 or 0 < image[14, 5] < 255, "antialiasing leaves grey edges"


def test_small_zips_split_by_alphabet_count_shared_alphabets_once_and_rotate(folders, monkeypatch):
    data, cache = folders
    write_small(data, monkeypatch)
    train, test = load_omniglot(test_alphabets=1, seed=0)
    assert train.alphabets | test.alphabets == {"Greek", "Latin", "Balinese", "Tagalog"}
    assert not train.alphabets & test.alphabets and len(test.alphabets) == 1
    characters = 3 + 2 + 2 + 4  # Greek and Latin once
    assert train.num_classes + test.num_classes == 4 * characters
    for split in (train, test):
        assert (
            split.images.shape == (3 * split.num_classes, 1, 28, 28)
            and split.images.dtype == torch.uint8
        )
        assert torch.equal(split.labels.unique(), torch.arange(split.num_classes))
        base = split.num_classes // 4
        for k in (1, 2, 3):  # class c + k*base is class c turned by k*90 degrees
            assert split.class_names[k * base].endswith(f"rot{90 * k:03d}")
            turned = torch.rot90(split.images[split.labels == 0], k, dims=(-2, -1))
            assert torch.equal(split.images[split.labels == k * base], turned)
    assert load_omniglot(test_alphabets=1, seed=0)[1].alphabets == test.alphabets, (
        "the split is seeded"
    )
    assert {load_omniglot(test_alphabets=1, seed=s)[1].alphabets.pop() for s in range(8)} != {
        test.alphabets.pop()
    }
    without_rotations = load_omniglot(test_alphabets=1, seed=0, rotations=False)[0]
    assert without_rotations.num_classes == train.num_classes // 4


def test_decoded_cache_is_written_to_the_cache_dir_and_reused(folders, monkeypatch):
    data, cache = folders
    write_small(data, monkeypatch)
    before = sorted(os.listdir(data))
    first = load_omniglot(test_alphabets=1)
    assert sorted(os.listdir(data)) == before, "nothing may be written next to the source zips"
    assert [p.suffix for p in cache.iterdir()] == [".pt"]
    monkeypatch.setattr(
        omniglot, "decode", lambda png: pytest.fail("decoded again instead of using the cache")
    )
    second = load_omniglot(test_alphabets=1)
    assert (
        torch.equal(first[0].images, second[0].images)
        and first[1].class_names == second[1].class_names
    )


def test_full_set_comes_first_with_the_official_split_and_folders_work(folders, monkeypatch):
    data, _ = folders
    write_small(data, monkeypatch)
    background = alphabet_files("images_background", {"Greek": 2, "Korean": 3})
    for name, content in background.items():  # the background set as an extracted folder
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        (data / name).write_bytes(content)
    md5 = write_zip(
        data / "images_evaluation.zip",
        alphabet_files("images_evaluation", {"Atlantean": 2, "Ge_ez": 1}),
    )
    monkeypatch.setattr(
        omniglot, "FULL", {"images_background": "unused for folders", "images_evaluation": md5}
    )
    train, test = load_omniglot()
    assert train.alphabets == {"Greek", "Korean"} and test.alphabets == {"Atlantean", "Ge_ez"}
    assert (train.num_classes, test.num_classes) == (4 * 5, 4 * 3)


def test_wrong_checksum_of_a_local_zip_names_the_file(folders, monkeypatch):
    data, _ = folders
    write_small(data, monkeypatch)
    (data / "images_background_small2.zip").write_bytes(b"not the zip")
    with pytest.raises(ValueError, match="images_background_small2.zip.*expected"):
        load_omniglot()


def serve(monkeypatch, files: dict[str, bytes] | None):
    def fake_urlopen(url, *args, **kwargs):
        if files is None:
            raise urllib.error.URLError("no network")
        return io.BytesIO(files[url.rsplit("/", 1)[-1]])

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)


def test_downloads_the_full_set_when_nothing_is_local(folders, tmp_path, monkeypatch):
    data, _ = folders
    zips = {}
    for name, alphabets in (
        ("images_background", {"Latin": 2}),
        ("images_evaluation", {"Mongolian": 2}),
    ):
        md5 = write_zip(tmp_path / f"{name}.zip", alphabet_files(name, alphabets))
        zips[f"{name}.zip"] = (tmp_path / f"{name}.zip").read_bytes()
        monkeypatch.setitem(omniglot.FULL, name, md5)
    serve(monkeypatch, zips)
    train, test = load_omniglot()
    assert sorted(os.listdir(data)) == ["images_background.zip", "images_evaluation.zip"]
    assert (train.alphabets, test.alphabets) == ({"Latin"}, {"Mongolian"})


def test_without_data_or_network_the_error_says_where_to_put_the_files(folders, monkeypatch):
    data, _ = folders
    serve(monkeypatch, None)
    with pytest.raises(FileNotFoundError, match="METALEARN_DATA_DIR") as error:
        load_omniglot()
    assert str(data) in str(error.value) and "images_background.zip" in str(error.value)
    assert list(data.iterdir()) == []
    with pytest.raises(FileNotFoundError, match="all_runs.zip"):
        omniglot_runs(download=False)


def test_official_runs_pair_each_query_with_its_class(folders, monkeypatch):
    data, _ = folders
    files, generator = {}, torch.Generator().manual_seed(0)
    for run in range(1, 21):
        base = f"all_runs/run{run:02d}/"
        answer = torch.randperm(20, generator=generator).tolist()  # item i shows class answer[i]
        lines = [
            f"run{run:02d}/test/item{i + 1:02d}.png run{run:02d}/training/class{c + 1:02d}.png"
            for i, c in enumerate(answer)
        ]
        files[base + "class_labels.txt"] = "\n".join(lines).encode()
        for c in range(20):
            files[base + f"training/class{c + 1:02d}.png"] = png(10 * c + run, size=8)
        for i, c in enumerate(answer):
            files[base + f"test/item{i + 1:02d}.png"] = png(10 * c + run, size=8)
    monkeypatch.setattr(omniglot, "RUNS", {"all_runs": write_zip(data / "all_runs.zip", files)})
    runs = omniglot_runs().validate()
    assert runs.support_x.shape == runs.query_x.shape == (20, 20, 1, 28, 28)
    assert torch.equal(runs.support_y, torch.arange(20).expand(20, 20))
    matched = runs.support_x[torch.arange(20)[:, None], runs.query_y]
    assert torch.equal(matched, runs.query_x)
    assert not torch.equal(runs.query_y[0], torch.arange(20))


def shared_omniglot() -> Path:
    root = (
        os.environ.get("METALEARN_DATA_DIR")
        or Path(__file__).resolve().parents[1].parent / "shared" / "data"
    )
    return Path(root) / "omniglot"


@pytest.mark.skipif(
    not (shared_omniglot() / "images_background_small1.zip").is_file(),
    reason="shared Omniglot data absent",
)
def test_shared_small_subsets_and_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("METALEARN_CACHE_DIR", os.environ.get("METALEARN_CACHE_DIR", str(tmp_path)))
    train, test = load_omniglot(shared_omniglot(), test_alphabets=3, seed=0)
    assert len(train.alphabets | test.alphabets) == 8 and not train.alphabets & test.alphabets
    assert train.num_classes + test.num_classes == 4 * 242
    assert len(train.images) + len(test.images) == 4 * 4840
    runs = omniglot_runs(shared_omniglot())
    assert runs.query_x.shape == (20, 20, 1, 28, 28)
    assert all(sorted(y.tolist()) == list(range(20)) for y in runs.query_y)
