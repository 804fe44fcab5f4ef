import pytest

from gptterm.models.gguf_meta import read_metadata


def test_reads_tiny_model_header(tiny_model):
    meta = read_metadata(tiny_model)
    assert meta.architecture == "llama"
    assert meta.context_length == 1024
    assert meta.vocab_size == 279
    assert meta.chat_template and "im_start" in meta.chat_template
    assert meta.n_params > 100_000


def test_model_without_template(tiny_model_no_template):
    assert read_metadata(tiny_model_no_template).chat_template is None


def test_bundled_model_header(bundled_model):
    meta = read_metadata(bundled_model)
    assert (meta.architecture, meta.context_length) == ("llama", 8192)
    assert meta.chat_template is not None
    assert 130e6 < meta.n_params < 140e6


@pytest.mark.parametrize("cut", [3, 10, 30, 500, 2000])
def test_truncated_header_is_a_value_error(tiny_model, tmp_path, cut):
    bad = tmp_path / "cut.gguf"
    bad.write_bytes(tiny_model.read_bytes()[:cut])
    with pytest.raises(ValueError):
        read_metadata(bad)


def test_header_is_remembered_until_the_file_changes(tiny_model, tmp_path, monkeypatch):
    from gptterm.models import gguf_meta

    copy = tmp_path / "model.gguf"
    copy.write_bytes(tiny_model.read_bytes())
    first = read_metadata(copy)

    def no_walk(path):
        raise AssertionError("walked the header again")

    monkeypatch.setattr(gguf_meta, "_read", no_walk)
    again = read_metadata(copy)
    assert (again.values, again.array_lengths, again.n_params) == (first.values, first.array_lengths, first.n_params)
    assert again.chat_template == first.chat_template and again.context_length == 1024

    monkeypatch.undo()
    copy.write_bytes(tiny_model.read_bytes()[:30])  # replaced by a broken file: read afresh, and refused
    with pytest.raises(ValueError):
        read_metadata(copy)
