"""Morgan fingerprints with RDKit: correctness, unparseable SMILES, and the cache."""

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import rdFingerprintGenerator

from metalearn.data import featurize as featurize_module
from metalearn.data.featurize import Featurizer, compute, featurize

SMILES = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "CCN(CC)CC"]
BAD = [
    "C1CC",
    "not a molecule",
    "",
    "[P](C)(C)(C)(C)(C)(C)C",
]  # unclosed ring, nonsense, empty, hypervalent


def test_fingerprints_match_rdkit_generator():
    features = compute(SMILES, Featurizer(radius=2, n_bits=2048))
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    expected = np.stack([generator.GetFingerprintAsNumPy(Chem.MolFromSmiles(s)) for s in SMILES])
    assert features.fingerprints.dtype == np.uint8 and features.fingerprints.shape == (4, 2048)
    np.testing.assert_array_equal(features.fingerprints, expected)
    assert features.valid.all() and features.num_invalid == 0
    # different molecules, different fingerprints; each has some bits on
    assert len({row.tobytes() for row in features.fingerprints}) == 4
    assert (features.fingerprints.sum(axis=1) > 0).all()


def test_radius_changes_fingerprints():
    small, large = compute(SMILES, Featurizer(radius=1)), compute(SMILES, Featurizer(radius=3))
    bits_small, bits_large = small.fingerprints.sum(axis=1), large.fingerprints.sum(axis=1)
    assert (bits_large >= bits_small).all() and (
        bits_large > bits_small
    ).sum() >= 3  # ethanol is too small to grow


def test_unparseable_smiles_are_marked_invalid_and_counted_never_kept(capfd):
    features = compute(SMILES[:2] + BAD, Featurizer())
    np.testing.assert_array_equal(features.valid, [True, True, False, False, False, False])
    assert features.num_invalid == 4
    assert (
        features.fingerprints[2:].sum() == 0
    )  # invalid rows must be dropped by callers, see test_fsmol
    assert (
        "valence" not in capfd.readouterr().err
    )  # RDKit's parse warnings are silenced while parsing


def test_descriptors_are_appended():
    features = compute(["CCO"], Featurizer(descriptors=("MolWt", "NumHDonors")))
    np.testing.assert_allclose(features.descriptors[0], [46.069, 1.0], atol=1e-2)
    matrix = features.matrix()
    assert matrix.shape == (1, 2050) and matrix.dtype == np.float32
    assert compute(["CCO"]).matrix().dtype == np.uint8


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"radius": -1}, "radius"),
        ({"n_bits": 100}, "n_bits"),
        ({"descriptors": ("NoSuch",)}, "descriptors"),
    ],
)
def test_bad_settings_raise_naming_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        Featurizer(**kwargs)


def test_cache_is_reused_grows_and_is_keyed_by_data_and_settings(tmp_path, monkeypatch):
    calls = []
    real_compute = featurize_module.compute

    def counting_compute(smiles, featurizer):
        calls.append(list(smiles))
        return real_compute(smiles, featurizer)

    monkeypatch.setattr(featurize_module, "compute", counting_compute)
    first = featurize(SMILES[:2] + BAD[:1] + SMILES[:1], Featurizer(), tmp_path, data_key="md5-a")
    assert calls == [SMILES[:2] + BAD[:1]]  # duplicates computed once
    again = featurize(SMILES[:2] + BAD[:1] + SMILES[:1], Featurizer(), tmp_path, data_key="md5-a")
    assert len(calls) == 1  # everything from the cache
    for a, b in ((first.fingerprints, again.fingerprints), (first.valid, again.valid)):
        np.testing.assert_array_equal(a, b)
    assert again.num_invalid == 1
    featurize(SMILES, Featurizer(), tmp_path, data_key="md5-a")
    assert calls[-1] == SMILES[2:]  # only the new molecules
    featurize(SMILES[:1], Featurizer(), tmp_path, data_key="md5-b")
    featurize(SMILES[:1], Featurizer(radius=3), tmp_path, data_key="md5-a")
    assert len(calls) == 4  # another data key or another setting is another cache
    assert len(list(tmp_path.glob("features-*.npz"))) == 3
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_featurize_without_cache_dir_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    features = featurize(SMILES, Featurizer(), cache_dir=None)
    assert features.valid.all() and not list(tmp_path.iterdir())
