"""Omniglot (Lake et al., 2015): 1,623 handwritten characters from 50 alphabets, 20 drawers each.

Where the files come from, in this order (``<data>`` is :func:`cache_dir("omniglot")
<metalearn.data.download.cache_dir>`, i.e. ``$METALEARN_DATA_DIR/omniglot``):

1. the official full set, ``<data>/images_background.zip`` and ``images_evaluation.zip``
   (or the same names as extracted folders);
2. else the official small subsets ``images_background_small1.zip`` and ``_small2.zip``
   (8 alphabets, 242 characters; Greek and Latin are in both and are counted once);
3. else the full zips are downloaded (md5-checked) from the official repository.

Images are made as the MAML reference code makes them (``cbfinn/maml``,
``data/omniglot_resized/resize_images.py``): the 105x105 1-bit PNG is resized to 28x28 by
PIL's ``resize(..., LANCZOS)``, which Pillow carries out as nearest-neighbour for 1-bit
images, so the result stays binary; then inverted, so strokes (ink) are 255 on a 0 background,
as ``uint8`` (``/ 255`` gives the reference's floats in [0, 1] with ink = 1). Decoding happens once;
the result is cached as a tensor file in :func:`derived_dir("omniglot")
<metalearn.data.download.derived_dir>` (``$METALEARN_CACHE_DIR/omniglot``, writable),
named after the *contents* of the sources (a zip's verified md5; for an extracted folder a
sha256 of every file's name and bytes, so a file changed in place is decoded afresh), and
reloaded in about a second. The file carries a sha256 of itself and is checked on every read
(:mod:`metalearn.data.cache`): a damaged one is logged, deleted and decoded again.

Two splits. ``split="characters"`` is the MAML paper's (``data_generator.py`` of the
reference code): all characters are shuffled with a seed, irrespective of alphabet, and
1,100 of the 1,623 go to meta-training, 100 to validation (set aside here) and 423 to
meta-testing; the small subsets keep those proportions (164 / 15 / 63 of 242).
``split="alphabets"`` is the harder variant: meta-test characters come from alphabets never
seen in meta-training (with the full set Lake et al.'s own background / evaluation split,
from which the official one-shot runs come; with the small subsets ``test_alphabets`` of
the 8 alphabets, drawn with ``seed``). ``rotations=True`` adds each character rotated by 90,
180 and 270 degrees as three new classes; the reference code instead rotates each class of
an episode by a random multiple of 90 degrees (:class:`~metalearn.tasks.EpisodeSampler`'s
``rotate=True``).
"""

from __future__ import annotations

import io
import os
import re
import urllib.error
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from PIL import Image

from metalearn.core import TaskBatch
from metalearn.data.cache import cached, digest, folder_digest
from metalearn.data.download import DATA_ENV_VAR, cache_dir, derived_dir, fetch, find_local

URL = "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/"
FULL = {
    "images_background": "68d2efa1b9178cc56df9314c21c6e718",
    "images_evaluation": "6b91aef0f799c5bb55b94e3f2daec811",
}
SMALL = {
    "images_background_small1": "e704a628b5459e08445c13499850abc4",
    "images_background_small2": "b75a71a51d3b13f821f212756fe481fd",
}
RUNS = {"all_runs": "e8996daecdf12afeeb4a53a179f06b19"}
RUNS_URL = URL + "one-shot-classification/"
SIZE = 28
CACHE_VERSION = 3  # 3: binary images, as the reference code resizes the 1-bit PNGs
_IMAGE_SUFFIXES = (".png",)
_RUNS_SUFFIXES = (".png", ".txt")
_IMAGE_PATH = re.compile(r"(?:^|/)([^/]+)/(character\d+)/([^/]+\.png)$")


@dataclass(frozen=True)
class ImageSet:
    """Labelled images: ``images [M, 1, 28, 28]`` uint8, ``labels [M]`` in ``0 .. C-1``,
    and ``class_names[c]`` such as ``"Greek/character03/rot090"``."""

    images: torch.Tensor
    labels: torch.Tensor
    class_names: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def alphabets(self) -> set[str]:
        return {name.split("/")[0] for name in self.class_names}

    @property
    def characters(self) -> list[str]:
        """Every character of the set once, as ``"Alphabet/characterNN"``, sorted."""
        return sorted({name.rsplit("/", 1)[0] for name in self.class_names})


def decode(png: bytes, name: str = "<bytes>") -> torch.Tensor:
    """A 105x105 Omniglot PNG -> ``[28, 28]`` uint8, strokes bright; resized as the reference
    code does (LANCZOS on the 1-bit image, i.e. nearest-neighbour: binary).

    Raises:
        ValueError: ``png`` is not a readable image; the message names it (``name``: the file,
            or the zip and its member).
    """
    try:
        with Image.open(io.BytesIO(png)) as opened:
            image = opened.resize((SIZE, SIZE), Image.Resampling.LANCZOS).convert("L")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise ValueError(
            f"{name} is not a readable PNG image ({type(error).__name__}: {error}); "
            "replace the file (or the archive holding it)"
        ) from None
    return 255 - torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).view(SIZE, SIZE)


def read_files(source: Path, suffixes: tuple[str, ...] = (".png",)) -> dict[str, bytes]:
    """Every file ending in ``suffixes`` in a zip file or a folder, keyed by its ``/``-separated
    path inside."""
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.is_file())
        return {
            p.relative_to(source).as_posix(): p.read_bytes()
            for p in files
            if p.name.endswith(suffixes)
        }
    with zipfile.ZipFile(source) as archive:
        return {
            name: archive.read(name)
            for name in sorted(archive.namelist())
            if name.endswith(suffixes)
        }


def _locate(
    data_dir: Path, names: dict[str, str], suffixes: tuple[str, ...] = _IMAGE_SUFFIXES
) -> list[tuple[Path, str]] | None:
    """``[(path, key)]`` for every name as a checked zip or an extracted folder, or ``None`` if
    one is missing. The key is content-addressed: the zip's verified md5, or a sha256 of the
    names and bytes of the folder's files ending in ``suffixes`` (never names and sizes only)."""
    found = []
    for name, md5 in names.items():
        zipped = find_local(data_dir, f"{name}.zip", md5)
        if zipped is not None:
            found.append((zipped, md5))
        elif (data_dir / name).is_dir():
            found.append((data_dir / name, "folder-" + folder_digest(data_dir / name, suffixes)))
        else:
            return None
    return found


def _obtain(
    data_dir: Path, names: dict[str, str], url: str, download: bool
) -> list[tuple[Path, str]]:
    try:
        if not download:
            raise FileNotFoundError("download=False")
        return [(fetch(url + f"{name}.zip", md5, data_dir), md5) for name, md5 in names.items()]
    except (OSError, urllib.error.URLError) as error:
        wanted = ", ".join(f"{name}.zip (md5 {md5})" for name, md5 in names.items())
        raise FileNotFoundError(
            f"Omniglot not found in {data_dir} and could not be downloaded ({error}). "
            f"Put {wanted} from {url} into that folder, or point the environment variable "
            f"{DATA_ENV_VAR} at a folder whose 'omniglot' subfolder holds them."
        ) from error


def _cached(sources: list[tuple[Path, str]], build, check) -> dict:
    """``build(sources)`` once, then reloaded from a tensor file named after the sources'
    content keys, the decoder (``build``'s name, :data:`SIZE`, :data:`CACHE_VERSION`), and
    checked on every read: by its sha256, then by ``check`` (raises if the structure is wrong).
    A damaged file is logged, deleted and rebuilt (:func:`metalearn.data.cache.cached`)."""
    key = digest(build.__name__, str(SIZE), str(CACHE_VERSION), *(k for _, k in sources))
    path = derived_dir("omniglot") / f"decoded{SIZE}-{key[:16]}.pt"

    def to_bytes(content: dict) -> bytes:
        buffer = io.BytesIO()
        torch.save(content, buffer)
        return buffer.getvalue()

    def from_bytes(payload: bytes) -> dict:
        content = torch.load(io.BytesIO(payload), weights_only=True)
        check(content)
        return content

    return cached(path, lambda: build(sources), to_bytes, from_bytes)


def _check_characters(decoded: dict) -> None:
    """Raise unless ``decoded`` is :func:`_decode_characters`' structure with consistent sizes."""
    images, character, names = decoded["images"], decoded["character"], decoded["names"]
    m = images.shape[0]
    if (
        images.dtype != torch.uint8
        or tuple(images.shape[1:]) != (SIZE, SIZE)
        or character.shape != (m,)
        or character.dtype != torch.int64
        or not m
        or len(decoded["origins"]) != len(names)
        or int(character.min()) < 0
        or int(character.max()) >= len(names)
    ):
        raise ValueError("decoded images, labels and names disagree")


def _check_runs(runs: dict) -> None:
    """Raise unless ``runs`` is :func:`_decode_runs`' structure: 20 runs of 20 images each."""
    if (
        tuple(runs["support"].shape) != (20, 20, SIZE, SIZE)
        or tuple(runs["query"].shape) != (20, 20, SIZE, SIZE)
        or runs["support"].dtype != torch.uint8
        or runs["query"].dtype != torch.uint8
        or tuple(runs["query_y"].shape) != (20, 20)
        or not bool(((runs["query_y"] >= 0) & (runs["query_y"] < 20)).all())
    ):
        raise ValueError("decoded runs have the wrong shapes")


def _decode_characters(sources: list[tuple[Path, str]]) -> dict:
    """Decode every image; each character once (the small subsets share Greek and Latin)."""
    images: list[torch.Tensor] = []
    character_of: list[int] = []
    characters: dict[str, int] = {}
    origins: list[str] = []
    for source, _ in sources:
        origin = source.name.removesuffix(".zip")
        taken = {name.split("/")[0] for name in characters}
        for path, png in read_files(source).items():
            match = _IMAGE_PATH.search(path)
            if match is None or match[1] in taken:
                continue
            name = f"{match[1]}/{match[2]}"
            if name not in characters:
                characters[name] = len(characters)
                origins.append(origin)
            images.append(
                decode(png, str(source / path) if source.is_dir() else f"{source}: {path}")
            )
            character_of.append(characters[name])
    if not images:
        raise ValueError(
            "no images in the official layout <alphabet>/characterNN/<id>.png in "
            f"{[str(s) for s, _ in sources]}"
        )
    return {
        "images": torch.stack(images),
        "character": torch.tensor(character_of),
        "names": list(characters),
        "origins": origins,
    }


def split_alphabets(
    alphabets: list[str], test_alphabets: int, seed: int
) -> tuple[list[str], list[str]]:
    """A seeded split of ``alphabets`` into (meta-train, meta-test), ``test_alphabets`` of them
    for testing."""
    names = sorted(set(alphabets))
    if not 1 <= test_alphabets < len(names):
        raise ValueError(
            f"test_alphabets must be in 1..{len(names) - 1} for {len(names)} alphabets, "
            f"got {test_alphabets}"
        )
    order = torch.randperm(len(names), generator=torch.Generator().manual_seed(seed)).tolist()
    test = sorted(names[i] for i in order[:test_alphabets])
    return [a for a in names if a not in test], test


SPLITS = ("alphabets", "characters")
# The reference code's character split: 1,100 meta-training, 100 validation, 423 meta-test of 1,623.
PAPER_SPLIT = (1100, 100, 423)


def split_characters(num_characters: int, seed: int) -> tuple[list[int], list[int]]:
    """The MAML paper's split of ``num_characters`` characters: shuffled with ``seed``, the
    first 1100/1623 for meta-training, the next 100/1623 set aside (validation in the reference
    code), the last 423/1623 for meta-testing (rounded; exactly 1100/100/423 for the full set).
    Returns the sorted (meta-train, meta-test) character indices."""
    total = sum(PAPER_SPLIT)
    num_test = round(num_characters * PAPER_SPLIT[2] / total)
    num_valid = round(num_characters * PAPER_SPLIT[1] / total)
    if num_characters - num_test - num_valid < 1 or num_test < 1:
        raise ValueError(f"{num_characters} characters are too few to split")
    order = torch.randperm(num_characters, generator=torch.Generator().manual_seed(seed))
    train = order[: num_characters - num_test - num_valid]
    return sorted(train.tolist()), sorted(order[num_characters - num_test :].tolist())


def _image_set(decoded: dict, keep: list[int], rotations: bool) -> ImageSet:
    character = decoded["character"]
    mask = torch.isin(character, torch.tensor(keep, dtype=character.dtype))
    base = decoded["images"][mask].unsqueeze(1)
    new_label = torch.full((len(decoded["names"]),), -1, dtype=torch.long)
    new_label[keep] = torch.arange(len(keep))
    labels = new_label[character[mask]]
    turns = range(4) if rotations else range(1)
    images = torch.cat([torch.rot90(base, k, dims=(-2, -1)) for k in turns])
    labels = torch.cat([labels + k * len(keep) for k in turns])
    names = tuple(f"{decoded['names'][c]}/rot{90 * k:03d}" for k in turns for c in keep)
    return ImageSet(images.contiguous(), labels, names)


def load_omniglot(
    data_dir: str | os.PathLike | None = None,
    *,
    split: str = "alphabets",
    test_alphabets: int = 3,
    seed: int = 0,
    rotations: bool = True,
    download: bool = True,
) -> tuple[ImageSet, ImageSet]:
    """Omniglot's meta-training and meta-testing classes.

    Args:
        data_dir: folder with the zips; default ``cache_dir("omniglot")``.
        split: ``"characters"`` (the MAML paper's: characters shuffled with ``seed``,
            irrespective of alphabet) or ``"alphabets"`` (meta-test alphabets unseen).
        test_alphabets: with ``split="alphabets"`` and the small subsets, how many of the 8
            alphabets go to meta-testing.
        seed: the seed of the split (the full set's alphabet split is the official one).
        rotations: add each character rotated by 90, 180, 270 degrees as three new classes.
        download: download the full set if no local copy is found.

    Returns:
        ``(meta_train, meta_test)`` image sets with disjoint characters (and, with
        ``split="alphabets"``, disjoint alphabets).

    Raises:
        FileNotFoundError: no local copy and no download (no network, or a read-only data
            folder, which is never written to); the message says where to put the files.
        ValueError: a local zip has the wrong checksum, or an image in it is not a readable PNG
            (the message names the file).
    """
    data_dir = Path(data_dir) if data_dir is not None else cache_dir("omniglot")
    sources = (
        _locate(data_dir, FULL)
        or _locate(data_dir, SMALL)
        or _obtain(data_dir, FULL, URL, download)
    )
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    decoded = _cached(sources, _decode_characters, _check_characters)
    if split == "characters":
        train_chars, test_chars = split_characters(len(decoded["names"]), seed)
        return (
            _image_set(decoded, train_chars, rotations),
            _image_set(decoded, test_chars, rotations),
        )
    alphabet_of = [name.split("/")[0] for name in decoded["names"]]
    if "images_evaluation" in decoded["origins"]:
        test = sorted(
            {a for a, o in zip(alphabet_of, decoded["origins"]) if o == "images_evaluation"}
        )
    else:
        test = split_alphabets(alphabet_of, test_alphabets, seed)[1]
    train_chars = [c for c, a in enumerate(alphabet_of) if a not in test]
    test_chars = [c for c, a in enumerate(alphabet_of) if a in test]
    return _image_set(decoded, train_chars, rotations), _image_set(decoded, test_chars, rotations)


RUNS_LAYOUT = (
    "[<folder>/]runNN/training/classNN.png, runNN/test/itemNN.png and runNN/class_labels.txt "
    "for NN = 01..20 (class_labels.txt: lines 'runNN/test/itemMM.png runNN/training/classKK.png')"
)
_ANSWER = re.compile(r"^run(\d\d)/test/item(\d\d)\.png\s+run(\d\d)/training/class(\d\d)\.png$")


def _decode_runs(sources: list[tuple[Path, str]]) -> dict:
    """Decode Lake et al.'s 20 one-shot runs from a zip or folder in the official layout.

    Raises:
        ValueError: the layout differs from :data:`RUNS_LAYOUT`, a file is missing or a line of a
            ``class_labels.txt`` is malformed; the message names the source and the file.
    """
    source = sources[0][0]
    files = read_files(source, _RUNS_SUFFIXES)
    prefixes = sorted({name.split("run01/")[0] for name in files if "run01/" in name})
    if len(prefixes) != 1:
        raise ValueError(
            f"{source} does not have the layout of Lake et al.'s one-shot runs: "
            + ("no folder run01/" if not prefixes else f"run01/ appears under {prefixes}")
            + f"; expected {RUNS_LAYOUT}"
        )
    prefix = prefixes[0]

    def member(name: str) -> bytes:
        if name not in files:
            raise ValueError(f"{source} lacks {name}; expected {RUNS_LAYOUT}")
        return files[name]

    support, query, query_label = [], [], []
    for run in range(1, 21):
        base = f"{prefix}run{run:02d}/"
        support.append(
            torch.stack(
                [
                    decode(member(name), f"{source}: {name}")
                    for name in (f"{base}training/class{c:02d}.png" for c in range(1, 21))
                ]
            )
        )
        query.append(
            torch.stack(
                [
                    decode(member(name), f"{source}: {name}")
                    for name in (f"{base}test/item{i:02d}.png" for i in range(1, 21))
                ]
            )
        )
        query_label.append(_run_answers(source, f"{base}class_labels.txt", member, run))
    return {
        "support": torch.stack(support),
        "query": torch.stack(query),
        "query_y": torch.tensor(query_label),
    }


def _run_answers(source: Path, name: str, member: Callable[[str], bytes], run: int) -> list[int]:
    """The class (0..19) of each of run ``run``'s 20 query items, from ``class_labels.txt``.

    Lines such as ``run01/test/item01.png run01/training/class08.png``: item 1 shows class 8.
    """
    answers: dict[int, int] = {}
    try:
        text = member(name).decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{source}: {name} is not UTF-8 text ({error})") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _ANSWER.match(line.strip())
        if match is None or int(match[1]) != run or int(match[3]) != run:
            raise ValueError(
                f"{source}: {name}, line {number}: got {line.strip()!r}, expected "
                f"'run{run:02d}/test/itemMM.png run{run:02d}/training/classKK.png'"
            )
        item, label = int(match[2]), int(match[4])
        if not (1 <= item <= 20 and 1 <= label <= 20):
            raise ValueError(
                f"{source}: {name}, line {number}: item {item} or class {label} not in 1..20"
            )
        answers[item] = label - 1
    absent = [i for i in range(1, 21) if i not in answers]
    if absent:
        raise ValueError(f"{source}: {name} gives no class for the item(s) {absent}")
    return [answers[i] for i in range(1, 21)]


def omniglot_runs(data_dir: str | os.PathLike | None = None, *, download: bool = True) -> TaskBatch:
    """Lake et al.'s 20 official 20-way one-shot runs as one task batch.

    Returns:
        ``support_x [20, 20, 1, 28, 28]`` (one drawing per class, ``support_y = 0..19``),
        ``query_x [20, 20, 1, 28, 28]`` and ``query_y [20, 20]``, as floats in ``[0, 1]``.

    Raises:
        FileNotFoundError: no local copy and no download; the message says where to put it.
        ValueError: ``all_runs`` (zip or folder) has another layout than :data:`RUNS_LAYOUT`, a
            file is missing or unreadable, or a ``class_labels.txt`` line is malformed; the
            message names the source, the file and (for a label) the line.
    """
    data_dir = Path(data_dir) if data_dir is not None else cache_dir("omniglot")
    sources = _locate(data_dir, RUNS, _RUNS_SUFFIXES) or _obtain(data_dir, RUNS, RUNS_URL, download)
    runs = _cached(sources, _decode_runs, _check_runs)
    support_y = torch.arange(20).expand(20, 20).clone()
    return TaskBatch(
        runs["support"].unsqueeze(2) / 255.0,
        support_y,
        runs["query"].unsqueeze(2) / 255.0,
        runs["query_y"],
    )
