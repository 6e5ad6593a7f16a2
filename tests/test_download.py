"""metalearn.data.download: checksummed, atomic downloads and the data/cache folders."""

import hashlib
import io
import urllib.error
import urllib.request

import pytest

from metalearn.data import cache_dir, derived_dir, fetch, find_local, md5sum

PAYLOAD = b"omniglot" * 500_000  # 4 MB: several read chunks
PAYLOAD_MD5 = hashlib.md5(PAYLOAD).hexdigest()
URL = "https://example.org/files/payload.zip"


class FakeResponse(io.BytesIO):
    """A urlopen response; with ``fail_after`` bytes it raises midway, like a dropped connection."""

    def __init__(
        self, data: bytes, fail_after: int | None = None, error: BaseException | None = None
    ):
        super().__init__(data)
        self.fail_after, self.error = fail_after, error

    def read(self, size=-1):
        if self.fail_after is not None and self.tell() >= self.fail_after:
            raise self.error
        return super().read(size)


def serve(monkeypatch, **kwargs):
    calls = []

    def fake_urlopen(url, *args, **kw):
        calls.append(url)
        return FakeResponse(PAYLOAD, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    return calls


def test_fetch_downloads_verifies_and_reuses(tmp_path, monkeypatch):
    calls = serve(monkeypatch)
    path = fetch(URL, PAYLOAD_MD5, tmp_path / "new")
    assert path == tmp_path / "new" / "payload.zip"
    assert path.read_bytes() == PAYLOAD
    assert fetch(URL, PAYLOAD_MD5, tmp_path / "new") == path
    assert len(calls) == 1, "a verified local copy must not be downloaded again"
    assert fetch(URL, PAYLOAD_MD5, tmp_path, filename="other.bin").name == "other.bin"
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["payload.zip"]


def test_checksum_mismatch_names_file_and_checksums_and_leaves_nothing(tmp_path, monkeypatch):
    serve(monkeypatch)
    wrong = "0" * 32
    with pytest.raises(ValueError, match=f"payload.zip.*{PAYLOAD_MD5}.*{wrong}"):
        fetch(URL, wrong, tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("error", [urllib.error.URLError("connection reset"), KeyboardInterrupt()])
def test_interrupted_download_leaves_no_partial_file(tmp_path, monkeypatch, error):
    serve(monkeypatch, fail_after=len(PAYLOAD) // 2, error=error)
    with pytest.raises(type(error)):
        fetch(URL, PAYLOAD_MD5, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_find_local_checks_the_checksum(tmp_path):
    assert find_local(tmp_path, "payload.zip", PAYLOAD_MD5) is None
    (tmp_path / "payload.zip").write_bytes(PAYLOAD)
    assert md5sum(tmp_path / "payload.zip") == PAYLOAD_MD5
    assert find_local(tmp_path, "payload.zip", PAYLOAD_MD5) == tmp_path / "payload.zip"
    (tmp_path / "payload.zip").write_bytes(PAYLOAD[:-1])
    with pytest.raises(ValueError, match="payload.zip.*expected " + PAYLOAD_MD5):
        find_local(tmp_path, "payload.zip", PAYLOAD_MD5)


def test_data_and_cache_folders_follow_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("METALEARN_DATA_DIR", raising=False)
    monkeypatch.delenv("METALEARN_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir("omniglot") == tmp_path / "xdg" / "metalearn" / "omniglot"
    assert derived_dir("omniglot") == tmp_path / "xdg" / "metalearn" / "omniglot"
    monkeypatch.setenv("METALEARN_CACHE_DIR", str(tmp_path / "cache"))
    assert cache_dir("omniglot") == derived_dir("omniglot") == tmp_path / "cache" / "omniglot"
    monkeypatch.setenv("METALEARN_DATA_DIR", str(tmp_path / "shared"))
    assert cache_dir("omniglot") == tmp_path / "shared" / "omniglot"
    assert not cache_dir("omniglot").exists(), "the data folder may be read-only: never created"
    assert derived_dir("omniglot") == tmp_path / "cache" / "omniglot"
    assert derived_dir("omniglot").is_dir()
