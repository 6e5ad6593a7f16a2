"""Real data sets: download with checksum, cache, load."""

from metalearn.data.download import cache_dir, derived_dir, fetch, find_local, md5sum
from metalearn.data.fsmol import Assay, FSMol, load_fsmol
from metalearn.data.omniglot import ImageSet, load_omniglot, omniglot_runs

__all__ = [
    "Assay",
    "FSMol",
    "ImageSet",
    "load_fsmol",
    "cache_dir",
    "derived_dir",
    "fetch",
    "find_local",
    "load_omniglot",
    "md5sum",
    "omniglot_runs",
]
