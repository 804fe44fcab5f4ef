"""The shared helpers every client and writer goes through: the retry policy, atomic writes, the exit-code table."""

from __future__ import annotations

import ast
import re
import threading
import time
from datetime import datetime, timezone
from email.utils import format_datetime

import pytest

from gptterm import atomic, errors, retry
from tests.conftest import ROOT

# -- retry policy ----------------------------------------------------------------------


def test_transient_statuses_are_timeouts_rate_limits_and_passing_server_trouble():
    assert {s for s in range(100, 600) if retry.transient(s)} == {408, 429, 500, 502, 503, 504}
    assert not retry.transient(None)


@pytest.mark.parametrize("value,seconds", [
    ("5", 5.0), (" 2.5 ", 2.5), ("0", 0.0), ("-3", 0.0),  # a negative wait is no wait
    (None, None), ("", None), ("soon", None),
])
def test_retry_after_in_seconds(value, seconds):
    assert retry.parse_retry_after(value) == seconds


def test_retry_after_as_an_http_date():
    now = datetime(2025, 3, 1, 12, 0, 0, tzinfo=timezone.utc).timestamp()
    later = format_datetime(datetime(2025, 3, 1, 12, 0, 45, tzinfo=timezone.utc), usegmt=True)
    assert later == "Sat, 01 Mar 2025 12:00:45 GMT"
    assert retry.parse_retry_after(later, now=now) == 45.0
    assert retry.parse_retry_after("Sat, 01 Mar 2025 11:00:00 GMT", now=now) == 0.0  # already past
    assert retry.parse_retry_after("Sat, 99 Foo 2025 11:00:00 GMT", now=now) is None


def test_back_off_doubles_from_the_base_up_to_the_cap_and_stops_after_the_retries():
    policy = retry.Policy(retries=8, base_delay=0.5)
    assert [policy.delay(n) for n in range(9)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, None]
    assert retry.Policy(retries=0, base_delay=1.0).delay(0) is None


def test_retry_after_replaces_the_back_off_up_to_the_cap_and_a_longer_one_gives_up():
    policy = retry.Policy(retries=3, base_delay=1.0)
    assert policy.delay(0, retry_after=0.0) == 0.0
    assert policy.delay(2, retry_after=7.0) == 7.0
    assert policy.delay(0, retry_after=retry.MAX_WAIT_S) == retry.MAX_WAIT_S
    assert policy.delay(0, retry_after=retry.MAX_WAIT_S + 1) is None  # fail now, not retry early
    assert policy.delay(3, retry_after=1.0) is None  # retries used up whatever the server says


def test_sleep_runs_out_or_stops_early_on_an_event_or_a_callable():
    assert retry.sleep(0.01) is True
    assert retry.sleep(0.0, threading.Event()) is True
    stop = threading.Event()
    threading.Timer(0.05, stop.set).start()
    start = time.monotonic()
    assert retry.sleep(20, stop) is False
    calls = []
    assert retry.sleep(20, lambda: calls.append(1) or len(calls) > 2) is False
    assert time.monotonic() - start < 5 and len(calls) == 3
    assert retry.sleep(0.05, lambda: False) is True


def test_the_hub_reads_its_retries_per_call(monkeypatch):
    from gptterm.models import hub

    monkeypatch.setenv("GPTTERM_HUB_RETRIES", "5")
    assert hub.retry_policy() == retry.Policy(5, hub.RETRY_DELAY_S)
    monkeypatch.setenv("GPTTERM_HUB_RETRIES", "many")
    assert hub.retry_policy().retries == 2


# -- atomic writes -------------------------------------------------------------------------


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "config.toml"
    atomic.write_text(target, "old\n")
    with pytest.raises(RuntimeError):
        with atomic.replacing(target) as tmp:
            tmp.write_text("half a fi")
            raise RuntimeError("the disk filled up")
    assert target.read_text() == "old\n"
    atomic.write_text(target, "new\n", durable=False)
    assert target.read_text() == "new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["config.toml"]


def _os_renames(path):
    """Lines of ``path`` that call os.replace or os.rename."""
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("replace", "rename") and getattr(node.func.value, "id", None) == "os"):
            yield node.lineno


def test_files_are_replaced_only_by_the_atomic_helper():
    # download.py renames finished files (a verified part to its blob, a blob into its snapshot),
    # which is no temporary being written; every other replace goes through gptterm.atomic.
    found = {str(p.relative_to(ROOT)): lines for p in (ROOT / "gptterm").rglob("*.py") if (lines := list(_os_renames(p)))}
    assert set(found) == {"gptterm/atomic.py", "gptterm/models/download.py"}, found
    assert len(found["gptterm/models/download.py"]) == 2


# -- exit codes ---------------------------------------------------------------------------


def _readme_codes() -> dict[int, str]:
    text = (ROOT / "README.md").read_text("utf-8")
    section = text.split("\n## Exit codes\n", 1)[1].split("\n## ", 1)[0]
    items = " ".join(section.split()).split(" · ")
    return {int(m[1]): m[2] for item in items if (m := re.match(r"(\d+) (.+)", item))}


def _error_classes() -> list[type[errors.GpttermError]]:
    return [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.GpttermError)]


def test_the_readme_lists_every_exit_code_of_errors_py_and_no_other():
    declared = {c.exit_code for c in _error_classes()}
    assert set(_readme_codes()) == declared | {0}
    assert _readme_codes()[130].startswith("interrupted")


def test_no_two_unrelated_error_classes_share_an_exit_code():
    classes = _error_classes()
    for a in classes:
        for b in classes:
            if a is not b and a.exit_code == b.exit_code:
                assert issubclass(a, b) or issubclass(b, a), (a.__name__, b.__name__, a.exit_code)


def _declares_exit_code(cls: ast.ClassDef) -> bool:
    targets = [t for stmt in cls.body if isinstance(stmt, ast.Assign) for t in stmt.targets]
    targets += [stmt.target for stmt in cls.body if isinstance(stmt, ast.AnnAssign)]
    return any(isinstance(t, ast.Name) and t.id == "exit_code" for t in targets)


def test_exit_codes_are_declared_only_in_errors_py():
    declaring = {str(p.relative_to(ROOT)): names for p in (ROOT / "gptterm").rglob("*.py")
                 if (names := [n.name for n in ast.walk(ast.parse(p.read_text("utf-8"), str(p)))
                               if isinstance(n, ast.ClassDef) and _declares_exit_code(n)])}
    assert set(declaring) == {"gptterm/errors.py"}, declaring
