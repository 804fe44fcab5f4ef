"""Finding the bundled model: importlib.metadata once per environment, then a remembered path."""

import sys

from gptterm.models import bundled


def test_lookup_is_remembered_per_environment(bundled_model, monkeypatch):
    assert bundled.bundled_model_path() == bundled_model  # looked up, then written down
    record = bundled._record()
    assert f"{sys.prefix}\t{bundled_model}" in record.read_text("utf-8")

    def no_lookup():
        raise AssertionError("looked up again")

    monkeypatch.setattr(bundled, "_lookup", no_lookup)
    assert bundled.bundled_model_path() == bundled_model


def test_stale_or_foreign_record_falls_back_to_the_lookup(bundled_model, tmp_path):
    record = bundled._record()
    record.parent.mkdir(parents=True, exist_ok=True)
    gone = tmp_path / bundled.FILENAME  # never created: the package was removed since
    record.write_text(f"/some/other/venv\t{bundled_model}\n{sys.prefix}\t{gone}\n", "utf-8")
    assert bundled.bundled_model_path() == bundled_model
    lines = record.read_text("utf-8").splitlines()
    assert f"/some/other/venv\t{bundled_model}" in lines  # other environments' answers are kept
    assert f"{sys.prefix}\t{bundled_model}" in lines and f"{sys.prefix}\t{gone}" not in lines
