import random
from pathlib import Path

import pytest
import torch

import minitorchnn as mtn
from minitorchnn.data import files as data
from minitorchnn.data.names import load_words


def test_names_split_sizes_match_the_lectures(names8, names3):
    for d in (names8, names3):  # one example per character plus the end, whatever the block size
        assert [len(d[s][1]) for s in ("train", "val", "test")] == [182_625, 22_655, 22_866]
    X, Y = names8["train"]
    assert X.shape == (182_625, 8) and X.dtype == Y.dtype == torch.long


def test_names_dataset_is_built_as_the_lectures_build_it(names3):
    words = load_words()
    assert len(words) == 32_033
    random.seed(42)
    random.shuffle(words)
    # the first training word, spelled out with '.' padding and end marker
    first = words[0]
    X, Y = names3["train"]
    vocab = names3.vocab
    assert vocab.decode(X[0]) == "..." and vocab.decode(Y[: len(first) + 1]) == first + "."
    assert vocab.decode(X[len(first)]) == (".." + first)[-3:]


def test_with_block_size_cuts_the_same_split_words_into_longer_contexts(names3, names8):
    longer = names3.with_block_size(8)
    assert longer.block_size == 8 and names3.with_block_size(3) is names3
    for split in ("train", "val", "test"):
        assert torch.equal(longer[split][0], names8[split][0]) and torch.equal(longer[split][1], names8[split][1])


def test_names_vocab_has_dot_at_zero(names8):
    assert names8.vocab.itos[0] == "." and names8.vocab.stoi["a"] == 1 and len(names8.vocab) == 27


def test_names_dataset_accepts_other_words_and_is_seeded():
    words = ["anna", "bob", "carl", "dora", "eve", "finn", "gus", "hana", "ivo", "jan"]
    a = mtn.names_dataset(block_size=2, words=words, seed=1)
    b = mtn.names_dataset(block_size=2, words=words, seed=1)
    c = mtn.names_dataset(block_size=2, words=words, seed=2)
    assert torch.equal(a["train"][0], b["train"][0]) and not torch.equal(a["train"][0], c["train"][0])
    assert words[0] == "anna"  # the caller's list is not shuffled in place
    assert len(a.words) == 10 and sorted(a.words) == sorted(words)


def test_splits_that_do_not_add_up_to_one_are_an_error():
    with pytest.raises(ValueError, match=r"three fractions that add up to 1, got \(0.8, 0.1, 0.2\)"):
        mtn.names_dataset(words=["ab", "cd"], splits=(0.8, 0.1, 0.2))


def test_char_vocab_round_trip_and_unknown_character():
    vocab = mtn.CharVocab.from_text("hello world")
    assert vocab.decode(vocab.encode("hold row")) == "hold row"
    assert vocab.decode(torch.tensor(vocab.encode("low"))) == "low"
    with pytest.raises(KeyError, match=r"character 'z' is not in the vocabulary of 8 characters"):
        vocab.encode("hez")
    assert "0x" not in repr(vocab)


def test_shakespeare_dataset():
    ds = mtn.shakespeare_dataset()
    assert ds.vocab_size == 65
    assert len(ds.train) == 1_003_854 and len(ds.val) == 111_540  # first 90% / last 10% of 1,115,394
    assert ds.decode(ds.train[:14]) == "First Citizen:"
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    x, y = ds.get_batch("train", 4, 16, generator=g1)
    x2, y2 = ds.get_batch("train", 4, 16, generator=g2)
    assert x.shape == y.shape == (4, 16) and x.dtype == torch.long
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert torch.equal(x[:, 1:], y[:, :-1])  # targets are the inputs shifted by one
    xv, _ = ds.get_batch("val", 2, 8)
    assert xv.max() < 65
    with pytest.raises(ValueError, match="split must be 'train' or 'val', got 'test'"):
        ds.get_batch("test", 2, 8)


# --- file resolution: top level -> MINITORCHNN_DATA -> download -> clear error ---------------

@pytest.fixture
def empty_root(tmp_path, monkeypatch):
    root = tmp_path / "root"
    root.mkdir()
    monkeypatch.setattr(data, "project_root", lambda: root)
    monkeypatch.delenv("MINITORCHNN_DATA", raising=False)
    return root


def _fake_spec(monkeypatch, source: Path, sha256: str):
    monkeypatch.setitem(data.FILES, "names.txt", data.DataFile("names.txt", source.as_uri(), sha256))


def test_top_level_file_is_used_first(empty_root, monkeypatch, tmp_path):
    shared = Path(__file__).resolve().parents[2] / "names.txt"
    (empty_root / "names.txt").write_bytes(shared.read_bytes())
    monkeypatch.setenv("MINITORCHNN_DATA", str(tmp_path / "nowhere"))
    assert mtn.data_path("names.txt") == empty_root / "names.txt"


def _data_folder(empty_root: Path, monkeypatch) -> Path:
    """A MINITORCHNN_DATA folder beside the checkout, holding the course's names.txt."""
    folder = empty_root.parent / "shared"
    folder.mkdir()
    (folder / "names.txt").write_bytes((Path(__file__).resolve().parents[2] / "names.txt").read_bytes())
    monkeypatch.setenv("MINITORCHNN_DATA", str(folder))
    return folder


def test_minitorchnn_data_folder_is_copied_to_the_top_level(empty_root, monkeypatch):
    _data_folder(empty_root, monkeypatch)
    path = mtn.data_path("names.txt")
    assert path == empty_root / "names.txt" and data.sha256_of(path) == data.FILES["names.txt"].sha256


def test_a_wrong_file_in_minitorchnn_data_is_refused(empty_root, monkeypatch):
    folder = empty_root.parent / "shared"
    folder.mkdir()
    (folder / "names.txt").write_text("not the names\n")
    monkeypatch.setenv("MINITORCHNN_DATA", str(folder))
    monkeypatch.setattr(data, "_download", _offline)
    with pytest.raises(FileNotFoundError, match=r"names.txt \(MINITORCHNN_DATA; its sha256 is [0-9a-f]{16}\.\.\., not the course's"):
        mtn.data_path("names.txt")
    assert not (empty_root / "names.txt").exists()


def test_download_is_checked_by_sha256(empty_root, monkeypatch, tmp_path):
    source = tmp_path / "served.txt"
    source.write_text("emma\nolivia\n")
    _fake_spec(monkeypatch, source, data.sha256_of(source))
    path = mtn.data_path("names.txt")
    assert path.read_text() == "emma\nolivia\n"


def test_download_with_wrong_sha256_leaves_nothing_and_explains(empty_root, monkeypatch, tmp_path):
    source = tmp_path / "served.txt"
    source.write_text("tampered\n")
    _fake_spec(monkeypatch, source, "0" * 64)
    with pytest.raises(FileNotFoundError) as err:
        mtn.data_path("names.txt")
    message = str(err.value)
    assert "has sha256" in message and "MINITORCHNN_DATA (not set)" in message
    assert "set MINITORCHNN_DATA to a folder that has names.txt" in message
    assert list(empty_root.iterdir()) == []  # no partial or unchecked file left behind


def test_unknown_data_file():
    with pytest.raises(KeyError, match="unknown data file 'words.txt'"):
        mtn.data_path("words.txt")


def _offline(spec, dest):
    raise OSError("no network in this test")


def _course_names() -> bytes:
    return (Path(__file__).resolve().parents[2] / "names.txt").read_bytes()


def test_a_wrong_top_level_file_is_moved_aside_and_replaced_from_minitorchnn_data(empty_root, monkeypatch, capsys):
    (empty_root / "names.txt").write_text("my own names\n")
    folder = empty_root.parent / "shared"
    folder.mkdir()
    (folder / "names.txt").write_bytes(_course_names())
    monkeypatch.setenv("MINITORCHNN_DATA", str(folder))
    copied_to = []
    real_copy = data.shutil.copyfile
    monkeypatch.setattr(data.shutil, "copyfile", lambda src, dst: copied_to.append(Path(dst)) or real_copy(src, dst))
    path = mtn.data_path("names.txt")
    assert data.sha256_of(path) == data.FILES["names.txt"].sha256
    assert (empty_root / "names.txt.modified").read_text() == "my own names\n"  # kept, never deleted
    assert "(wrong sha256); moved it to" in capsys.readouterr().err
    assert copied_to and all(p != path and p.parent == path.parent for p in copied_to)  # a temporary, then a rename
    assert sorted(p.name for p in empty_root.iterdir()) == ["names.txt", "names.txt.modified"]


def test_a_wrong_top_level_file_is_replaced_by_a_download(empty_root, monkeypatch, tmp_path):
    (empty_root / "names.txt").write_text("stale\n")
    source = tmp_path / "served.txt"
    source.write_text("emma\nolivia\n")
    _fake_spec(monkeypatch, source, data.sha256_of(source))
    assert mtn.data_path("names.txt").read_text() == "emma\nolivia\n"


def test_a_wrong_top_level_file_with_no_good_copy_is_refused_not_used(empty_root, monkeypatch):
    (empty_root / "names.txt").write_text("stale\n")
    monkeypatch.setattr(data, "_download", _offline)
    with pytest.raises(FileNotFoundError) as err:
        mtn.data_path("names.txt")
    message = str(err.value)
    assert "there, but its sha256 is" in message and f"Move {empty_root / 'names.txt'} away" in message
    assert (empty_root / "names.txt").read_text() == "stale\n"  # left as it was for the user to look at


def test_load_words_lower_cases_and_names_a_character_outside_the_vocabulary(tmp_path):
    words = tmp_path / "names.txt"
    words.write_text("Emma\n\nOLIVIA\n")
    assert load_words(words) == ["emma", "olivia"]
    words.write_text("emma\nzoe\njean-luc\n")
    with pytest.raises(ValueError, match=r"names.txt, line 3: 'jean-luc' has the character '-', which is not in "
                                         r"the names vocabulary \('.' and a-z\)"):
        load_words(words)
    assert load_words(words, alphabet=None)[-1] == "jean-luc"


def _read_only(monkeypatch, root: Path) -> None:
    """root refuses new files, as a read-only checkout does (chmod would not stop root, who runs CI)."""
    real = data.write_error
    monkeypatch.setattr(data, "write_error", lambda folder: PermissionError(13, "Permission denied")
                        if Path(folder) == root else real(folder))


def test_a_read_only_checkout_reads_minitorchnn_data_in_place(empty_root, monkeypatch):
    folder = _data_folder(empty_root, monkeypatch)
    monkeypatch.setenv("MINITORCHNN_CACHE", str(empty_root.parent / "cache"))
    _read_only(monkeypatch, empty_root)
    assert mtn.data_path("names.txt") == folder / "names.txt"
    assert list(empty_root.iterdir()) == []  # nothing was written into the checkout


def test_a_read_only_checkout_downloads_into_the_cache_folder(empty_root, monkeypatch, tmp_path):
    source = tmp_path / "served.txt"
    source.write_text("emma\nolivia\n")
    _fake_spec(monkeypatch, source, data.sha256_of(source))
    monkeypatch.setenv("MINITORCHNN_CACHE", str(tmp_path / "cache"))
    _read_only(monkeypatch, empty_root)
    assert mtn.data_path("names.txt") == tmp_path / "cache" / "names.txt"
    monkeypatch.setattr(data, "_download", _offline)  # the next call finds the cached copy without the network
    assert mtn.data_path("names.txt").read_text() == "emma\nolivia\n"


def test_the_repository_ships_both_data_files():
    root = Path(__file__).resolve().parents[2]
    for name, spec in data.FILES.items():
        assert data.sha256_of(root / name) == spec.sha256
