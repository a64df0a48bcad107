import os

import numpy as np
import pytest
import torch

import minitorchnn as mtn
from minitorchnn.data import corpus
from minitorchnn.cli import main

TEXT = "First Citizen:\nBefore we proceed — höw dö wé ßay ✓ in 日本語?\n" * 50


@pytest.fixture
def text_file(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus, "CHUNK_CHARS", 13)  # tiny chunks: many boundaries, some inside a character
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


@pytest.mark.parametrize("level, vocab_size", [("char", len(set(TEXT))), ("byte", 256)])
def test_a_memmap_corpus_round_trips(text_file, level, vocab_size):
    data = corpus.text_dataset(text_file, level)
    assert isinstance(data.tokens, np.memmap) and data.vocab_size == vocab_size
    assert data.decode(data.tokens.tolist()) == TEXT
    assert data.n_tokens == (len(TEXT) if level == "char" else len(TEXT.encode("utf-8")))
    assert data.split_at == int(0.9 * data.n_tokens)
    assert data.encode("höw") == (data.vocab.encode("höw"))
    if level == "char":
        assert data.vocab == mtn.CharVocab.from_text(TEXT)  # the same vocabulary as the in-memory TextDataset


def test_batches_are_windows_of_the_text_shifted_by_one(text_file):
    data = corpus.text_dataset(text_file)
    x, y = data.get_batch("train", 8, 20, generator=torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (8, 20) and x.dtype == torch.long
    assert torch.equal(x[:, 1:], y[:, :-1])
    for row in x:
        assert data.decode(row) in TEXT
    x2, _ = data.get_batch("train", 8, 20, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, x2)
    xv, _ = data.get_batch("val", 4, 20, generator=torch.Generator().manual_seed(0))
    assert all(data.decode(row) in data.decode(data.split("val").tolist()) for row in xv)


def test_the_bin_is_encoded_once_and_again_when_the_text_changes(text_file):
    bin_path = corpus.encode_corpus(text_file)
    first = bin_path.stat().st_mtime_ns
    assert corpus.encode_corpus(text_file) == bin_path and bin_path.stat().st_mtime_ns == first
    text_file.write_text(TEXT + "more", encoding="utf-8")
    os.utime(text_file, ns=(first + 10**9, first + 10**9))
    assert corpus.text_dataset(text_file).decode(corpus.text_dataset(text_file).tokens.tolist()) == TEXT + "more"


def test_shakespeare_through_the_memmap_equals_the_in_memory_dataset(tmp_path):
    source = tmp_path / "shakespeare.txt"
    source.write_bytes(mtn.data_path("shakespeare.txt").read_bytes())
    mapped, in_memory = corpus.text_dataset(source), mtn.shakespeare_dataset()
    assert mapped.vocab == in_memory.vocab
    assert torch.equal(torch.from_numpy(mapped.split("train").astype(np.int64)), in_memory.train)
    assert torch.equal(torch.from_numpy(mapped.split("val").astype(np.int64)), in_memory.val)


def test_training_on_a_text_file_from_the_command_line(text_file, capsys):
    assert main(["train", "--data", str(text_file), "--level", "byte", "--steps", "5", "--block-size", "16",
                 "--n-layer", "1", "--n-embd", "16", "--n-head", "2", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "byte level, vocab_size=256" in out and "trained 5 steps" in out and "tokens/s" in out
    assert (text_file.parent / "corpus.txt.byte.bin").exists()
    assert main(["train", "--data", str(text_file), "--model", "mlp"]) == 2
    assert "--data trains a text model (gpt or wavegpt), not mlp" in capsys.readouterr().err


def test_bad_corpora_are_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match="no text file"):
        corpus.encode_corpus(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(ValueError, match="empty.txt is empty: nothing to train on"):
        corpus.encode_corpus(tmp_path / "empty.txt")
    with pytest.raises(ValueError, match="level must be 'char' or 'byte', got 'word'"):
        corpus.encode_corpus(tmp_path / "empty.txt", "word")
    assert corpus.ByteVocab().decode([0xE6, 0x97]) == "\ufffd"  # half a character: replaced, no crash


def test_a_damaged_json_is_rebuilt_not_fatal(text_file):
    bin_path = corpus.encode_corpus(text_file, "char")
    bin_path.with_suffix(".json").write_text("{ half a json")
    data = corpus.text_dataset(text_file, "char")  # encoded again instead of failing on every later run
    assert data.decode(data.tokens.tolist()) == TEXT


def test_the_json_is_written_atomically(text_file, monkeypatch):
    renamed = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: renamed.append(str(dst)) or real_replace(src, dst))
    bin_path = corpus.encode_corpus(text_file, "byte")
    assert str(bin_path.with_suffix(".json")) in renamed and str(bin_path) in renamed  # written aside, then renamed
    assert sorted(p.name for p in text_file.parent.iterdir()) == ["corpus.txt", "corpus.txt.byte.bin",
                                                                  "corpus.txt.byte.json"]


def test_staleness_is_decided_by_content_not_size_and_time(text_file):
    corpus.encode_corpus(text_file, "char")
    stat = text_file.stat()
    text_file.write_text(TEXT.replace("First", "Frist"), encoding="utf-8")  # same size ...
    os.utime(text_file, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # ... and the same modification time
    assert text_file.stat().st_size == stat.st_size
    assert corpus.text_dataset(text_file, "char").decode(range(5)) != ""  # readable
    data = corpus.text_dataset(text_file, "char")
    assert data.decode(data.tokens.tolist()).startswith("Frist Citizen")


def test_a_file_that_is_not_utf8_names_the_file_and_suggests_bytes(tmp_path, capsys):
    path = tmp_path / "latin1.txt"
    path.write_bytes("caf\xe9 au lait\n".encode("latin-1") * 20)
    with pytest.raises(ValueError, match=r"latin1.txt is not UTF-8 text \(byte 3 cannot be decoded\); read it byte "
                                         r"by byte with --level byte"):
        corpus.encode_corpus(path, "char")
    assert corpus.text_dataset(path, "byte").n_tokens == 13 * 20
    assert main(["--data", str(path), "--steps", "1"]) == 2
    assert capsys.readouterr().err.startswith(f"error: {path} is not UTF-8 text")


def test_a_read_only_data_folder_falls_back_to_the_cache_folder(text_file, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("MINITORCHNN_CACHE", str(cache))
    monkeypatch.setattr(corpus, "_writable", lambda folder: folder != text_file.parent)  # root ignores chmod
    data = corpus.text_dataset(text_file, "char")
    assert data.bin_path.parent == cache and data.bin_path.name.endswith("-corpus.txt.char.bin")
    assert sorted(p.name for p in text_file.parent.iterdir()) == ["cache", "corpus.txt"]
    assert data.decode(data.tokens.tolist()) == TEXT


def test_a_folder_is_not_a_text_file(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a folder, not a text file"):
        corpus.encode_corpus(tmp_path)


def test_a_cache_overwritten_with_other_bytes_of_the_same_size_is_rebuilt(text_file):
    bin_path = corpus.encode_corpus(text_file, "char")
    good = bin_path.read_bytes()
    bin_path.write_bytes(bytes(reversed(good)))  # the same size, the json untouched
    data = corpus.text_dataset(text_file, "char")
    assert bin_path.read_bytes() == good and data.decode(data.tokens.tolist()) == TEXT


def test_a_fifo_is_named_as_what_it_is(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match=r"pipe is a FIFO \(named pipe\), not a regular text file"):
        corpus.text_dataset(fifo)
