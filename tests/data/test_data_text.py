"""Text datasets: documents, splits, tokenizers, and the one-line errors of bad text."""

import numpy as np
import pytest

from autophagy.data import DATASETS, load_dataset
from autophagy.data.text import decode, read_documents, split_documents, zipf_probabilities
from autophagy.errors import InputError

pytest.importorskip("tokenizers")

STORY = "The cat sat on the mat. The dog sat on the log.\n\nA bird flew over the cat.\n\n"


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOPHAGY_CACHE", str(tmp_path / "cache"))


def _corpus(folder, n_docs=60):
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(40)]
    docs = [" ".join(rng.choice(words, size=30)) + "." for _ in range(n_docs)]
    path = folder / "corpus.txt"
    path.write_text("\n\n".join(docs))
    return path, docs


def test_documents_split_on_blank_lines_else_lines_else_endoftext():
    assert split_documents(STORY) == ["The cat sat on the mat. The dog sat on the log.",
                                      "A bird flew over the cat."]
    assert split_documents("one\ntwo\nthree") == ["one", "two", "three"]
    assert split_documents("a b<|endoftext|>c\n\nd<|endoftext|>") == ["a b", "c\n\nd"]


def test_the_split_is_by_document_and_the_tokenizer_sees_only_training_text(tmp_path):
    path, docs = _corpus(tmp_path)
    ds = load_dataset("text", path=str(path), n_train=20, n_test=5, seed=1,
                      tokenizer="word", vocab_size=30, block_len=8, test_fraction=0.2)
    assert ds.kind == "text" and ds.train.dtype == np.int64 and ds.shape == (8,)
    assert (len(ds.train), len(ds.test)) == (20, 5)
    n = ds.params["documents"]
    assert n["test"] == 12 and n["train"] == 48  # 20% of the words, whole documents
    assert ds.train.max() < 30 and ds.params["vocab_size"] == 30
    text = " ".join(decode(ds.params["tokenizer"], ds.train[:2]))
    assert "w" in text


def test_a_trained_tokenizer_is_cached_and_read_back(tmp_path):
    path, _ = _corpus(tmp_path)
    a = load_dataset("text", path=str(path), n_train=10, n_test=2, tokenizer="bpe",
                     vocab_size=280, block_len=8)
    cached = list((tmp_path / "cache" / "tokenizers").glob("bpe-*.json"))
    assert len(cached) == 1
    b = load_dataset("text", path=str(path), n_train=10, n_test=2, tokenizer="bpe",
                     vocab_size=280, block_len=8)
    assert a.params["tokenizer"] == b.params["tokenizer"]
    np.testing.assert_array_equal(a.train, b.train)


def test_wikitext_raw_keeps_its_official_split(tmp_path):
    (tmp_path / "wiki.train.raw").write_text(" = A = \n\n" + "\n\n".join(
        f"alpha beta gamma {i} ." for i in range(50)))
    (tmp_path / "wiki.test.raw").write_text("\n\n".join(f"delta epsilon {i} ." for i in range(9)))
    train, test = read_documents(tmp_path)
    assert len(test) == 9 and all(d.startswith("delta") for d in test)
    ds = load_dataset("text", path=str(tmp_path), n_train=4, n_test=2, tokenizer="word",
                      vocab_size=20, block_len=4)
    assert ds.params["documents"]["test"] == 9


@pytest.mark.parametrize(("content", "message"), [
    (b"", r"^data.path: '.*empty.txt' is empty; give a file with some text$"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", r"^data.path: '.*empty.txt' is a binary file, not text"),
    (b"caf\xe9 au lait", r"^data.path: '.*empty.txt' is not UTF-8 text \(byte 3\)"),
])
def test_empty_or_binary_text_is_refused_in_one_line(tmp_path, content, message):
    path = tmp_path / "empty.txt"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        load_dataset("text", path=str(path))


def test_a_vocabulary_larger_than_the_corpus_is_refused_in_one_line(tmp_path):
    path, _ = _corpus(tmp_path)
    with pytest.raises(InputError, match=r"^data.options.vocab_size: 5000 is larger than the 43 "
                                         r"distinct words .* lower vocab_size to at most 43$"):
        load_dataset("text", path=str(path), n_train=10, n_test=2, tokenizer="word",
                     vocab_size=5000)


def test_more_blocks_than_the_text_has_are_refused(tmp_path):
    path, _ = _corpus(tmp_path)
    with pytest.raises(InputError, match=r"^data.n_train: 5000 blocks of 8 tokens asked"):
        load_dataset("text", path=str(path), n_train=5000, n_test=2, tokenizer="word",
                     vocab_size=30, block_len=8)


def test_zipf_tokens_follow_their_law():
    ds = load_dataset("zipf", n_train=2000, n_test=10, seed=0, vocab_size=20, exponent=1.2,
                      block_len=16)
    assert ds.kind == "text" and ds.train.shape == (2000, 16) and ds.train.dtype == np.int64
    freq = np.bincount(ds.train.ravel(), minlength=20) / ds.train.size
    p = zipf_probabilities(20, 1.2)
    np.testing.assert_allclose(ds.params["probabilities"], p)
    se = np.sqrt(p * (1 - p) / ds.train.size)
    assert np.all(np.abs(freq - p) < 5 * se)


def test_the_packaged_lee_corpus_loads_without_importing_gensim():
    import sys

    pytest.importorskip("gensim", reason="the packaged corpora need the [corpora] extra")
    sys.modules.pop("gensim", None)
    ds = load_dataset("lee", n_train=500, n_test=100, tokenizer="word", vocab_size=500)
    assert "gensim" not in sys.modules
    assert DATASETS["lee"].kind == "text" and ds.train.shape == (500, 32)
    assert ds.params["documents"]["train"] + ds.params["documents"]["test"] == 350
