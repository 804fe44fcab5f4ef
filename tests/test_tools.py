"""The ToolBox against real MCP servers (tests/fixtures/mcp_server.py, the official SDK) over stdio and
streamable HTTP, the built-in tools' refusals, and the approval policy."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from gptterm.errors import ConfigError, UsageError
from gptterm.tools import builtin
from gptterm.types import Tool, ToolCall
from gptterm.tools.mcp_client import McpServerSpec, check_mcp_table, parse_mcp_command
from gptterm.tools.permissions import Approvals
from gptterm.tools.registry import ToolBox, build_toolbox
from tests.conftest import free_port, wait_for_line

FIXTURE = str(Path(__file__).parent / "fixtures" / "mcp_server.py")


def server(name: str, *args: str, timeout: float = 20.0, **env: str) -> McpServerSpec:
    return McpServerSpec(name, sys.executable, (FIXTURE, *args), env=env, timeout=timeout)


def call(name: str, **arguments) -> ToolCall:
    return ToolCall(f"id-{name}", name, arguments)


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    folder = tmp_path_factory.mktemp("allowed")
    (folder / "notes.txt").write_text("buy milk\n")
    t0 = time.perf_counter()
    toolbox = build_toolbox(["read_file"], allow=[folder], mcp=[
        server("fx", GPTTERM_FIXTURE_VALUE="one"), server("twin", GPTTERM_FIXTURE_VALUE="two"),
        server("dead", "exit"), server("garbage", "garbage", timeout=1.5), server("silent", "silent", timeout=1.5),
        McpServerSpec("nope", "gptterm-no-such-program-xyz")])
    toolbox.start_s = time.perf_counter() - t0  # type: ignore[attr-defined]
    yield toolbox
    toolbox.close()


def test_servers_that_cannot_start_are_one_line_each(box):
    lines = {line.split(":")[0]: line for line in box.failures}
    assert set(lines) == {"mcp.dead", "mcp.garbage", "mcp.silent", "mcp.nope"}
    assert "cannot open the database /nonexistent/db" in lines["mcp.dead"]  # its own last words on stderr
    assert "did not answer within 1.5 s" in lines["mcp.garbage"] and "not JSON-RPC" in lines["mcp.garbage"]
    assert "did not answer within 1.5 s" in lines["mcp.silent"]
    assert "no such program" in lines["mcp.nope"]
    assert all("\n" not in line and "Traceback" not in line for line in box.failures)
    assert box.start_s < 10  # the servers start at once: the slow failures overlap
    listed = {s["name"]: s for s in box.servers()}
    assert listed["fx"]["running"] and "fx__add" in listed["fx"]["tools"] and listed["fx"]["transport"] == "stdio"
    assert not listed["dead"]["running"] and listed["dead"]["tools"] == []


def test_clashing_tool_names_are_prefixed_by_their_server(box):
    names = [t.name for t in box.tools]
    assert names[0] == "read_file"
    assert {"fx__add", "twin__add", "fx__echo", "twin__big"} <= set(names)
    assert "add" not in names
    assert box.get("fx__echo").read_only and not box.get("fx__add").read_only  # readOnlyHint
    assert box.get("fx__add").source == "mcp:fx" and box.get("read_file").source == "built-in"
    assert box.get("fx__add").parameters["required"] == ["a", "b"]
    # each name reaches its own server (env passed to each)
    assert box.run(call("fx__where")).content.endswith(" one")
    assert box.run(call("twin__where")).content.endswith(" two")


def test_calls_and_every_way_they_fail(box):
    ok = box.run(call("fx__add", a=2, b=3), timeout=10)
    assert (ok.content, ok.error, ok.call_id, ok.name) == ("5", False, "id-fx__add", "fx__add")
    boom = box.run(call("fx__boom"), timeout=10)
    assert boom.error and "boom" in boom.content
    t0 = time.perf_counter()
    slow = box.run(call("fx__slow", seconds=30), timeout=0.5)
    assert slow.error and "did not answer within 0.5 s" in slow.content and time.perf_counter() - t0 < 3
    assert box.run(call("fx__add", a=1, b=1)).content == "2"  # the server is still fine afterwards
    bad = box.run(call("fx__add", a="x", b=1))
    assert bad.error and bad.content.startswith("invalid arguments for fx__add: 'x' is not of type 'integer'")
    unknown = box.run(call("delete_all"))
    assert unknown.error and "no tool named 'delete_all'" in unknown.content and "fx__add" in unknown.content
    broken = box.run(ToolCall("c9", "fx__add", raw="{oops", error="the call is not valid JSON (Expecting value)"))
    assert broken.error and "could not be read" in broken.content


def test_a_huge_result_is_cut_and_says_so(box):
    big = box.run(call("fx__big"), timeout=20, max_chars=2000)
    assert big.truncated and not big.error and len(big.content) <= 2000
    assert "cut: the result is 5,000,000 characters" in big.content


def test_cancel_stops_a_running_call(box):
    timer = threading.Timer(0.5, box.cancel)
    timer.start()
    t0 = time.perf_counter()
    result = box.run(call("fx__slow", seconds=30), timeout=20)
    assert result.error and "stopped" in result.content and time.perf_counter() - t0 < 3


def test_a_server_that_dies_mid_session_is_an_error_not_a_hang(box):
    t0 = time.perf_counter()
    gone = box.run(call("twin__die"), timeout=10)
    assert gone.error and "twin" in gone.content and time.perf_counter() - t0 < 5, gone.content
    after = box.run(call("twin__add", a=1, b=2), timeout=5)
    assert after.error and "not running" in after.content
    assert box.run(call("fx__add", a=1, b=2)).content == "3"  # the other server is not affected


def test_builtins_run_in_the_same_box(box, tmp_path):
    assert box.run(call("read_file", path="notes.txt")).content == "buy milk\n"
    assert box.run(call("read_file", path=str(tmp_path / "x"))).error


def test_streamable_http_server(tmp_path, monkeypatch):
    port = free_port()
    proc = subprocess.Popen([sys.executable, FIXTURE, "http", str(port)], stderr=subprocess.PIPE, text=True,
                            stdout=subprocess.DEVNULL)
    try:
        assert wait_for_line(proc.stderr, "Uvicorn running on", 30, [])
        monkeypatch.setenv("GPTTERM_TEST_TOKEN", "t0ken")
        url = f"http://127.0.0.1:{port}/mcp"
        spec = check_mcp_table("web", {"url": url, "headers": {"Authorization": "Bearer ${GPTTERM_TEST_TOKEN}"}},
                               "config.toml")
        missing = check_mcp_table("web2", {"url": url, "headers": {"X-Key": "${GPTTERM_NOT_SET_ANYWHERE}"}}, "c")
        with build_toolbox(mcp=[spec, missing, parse_mcp_command(f"http://127.0.0.1:{free_port()}/mcp")]) as web:
            assert web.run(call("add", a=40, b=2)).content == "42"
            assert any(line.startswith("mcp.web2: its header X-Key uses ${GPTTERM_NOT_SET_ANYWHERE}")
                       for line in web.failures)
            assert any(line.startswith("mcp.127-0-0-1: cannot connect") for line in web.failures), web.failures
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# -- config and --mcp ---------------------------------------------------------------------


def test_mcp_tables_are_checked_with_one_line():
    spec = check_mcp_table("notes", {"command": "npx", "args": ["-y", "pkg", "~/notes"], "env": {"A": "1"}}, "cfg")
    assert spec.args[2] == os.path.expanduser("~/notes") and spec.transport == "stdio"
    for values, words in [({}, "needs either command"), ({"command": "x", "url": "http://y"}, "not both"),
                          ({"command": "x", "colour": 1}, "unknown key 'colour'"), ({"command": 3}, "must be a string"),
                          ({"command": "x", "args": [1]}, "list of strings"), ({"url": "ftp://x"}, "http://"),
                          ({"command": "x", "headers": {"a": "b"}}, "headers are for a url"),
                          ({"command": "x", "timeout": 0}, "more than 0")]:
        with pytest.raises(ConfigError) as err:
            check_mcp_table("notes", values, "cfg")
        assert str(err.value).startswith("cfg: mcp.notes") and words in str(err.value), (values, str(err.value))
    with pytest.raises(ConfigError, match="letters, digits"):
        check_mcp_table("bad name", {"command": "x"}, "cfg")


@pytest.mark.parametrize("text, name, command", [
    ("npx -y @modelcontextprotocol/server-filesystem ~/notes", "filesystem", "npx"),
    ("uvx mcp-server-git --repository .", "git", "uvx"),
    ("python -m my_tools.server", "my_tools-server", "python"),
    ("/opt/bin/weather-mcp --fast", "weather", "/opt/bin/weather-mcp"),
    ("https://example.com/mcp", "example", None),
])
def test_mcp_commands_get_a_name(text, name, command):
    spec = parse_mcp_command(text)
    assert (spec.name, spec.command) == (name, command)
    if command == "npx":
        assert spec.args[-1] == os.path.expanduser("~/notes")


def test_a_bad_mcp_command_is_a_usage_error():
    with pytest.raises(UsageError):
        parse_mcp_command("npx 'unclosed")
    with pytest.raises(UsageError):
        parse_mcp_command("  ")


# -- built-ins ----------------------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path):
    inside = tmp_path / "inside"
    (inside / "sub").mkdir(parents=True)
    (inside / "a.txt").write_text("alpha\n")
    (inside / "sub" / "b.txt").write_text("beta\n")
    (inside / "big.txt").write_text("x" * 5000)
    (inside / "bin.dat").write_bytes(b"\x00\x01\x02binary")
    (tmp_path / "secret.txt").write_text("the password")
    (inside / "out").symlink_to(tmp_path / "secret.txt")
    (inside / "outdir").symlink_to(tmp_path)
    (inside / "ok-link").symlink_to(inside / "a.txt")
    os.mkfifo(inside / "pipe")
    return inside


def readers(tree, **kw) -> ToolBox:
    return build_toolbox(["read_file", "list_dir"], allow=[tree], **kw)


@pytest.mark.parametrize("path, words", [
    ("../secret.txt", "outside the allowed folders"),
    ("sub/../../secret.txt", "outside the allowed folders"),
    ("/etc/passwd", "outside the allowed folders"),
    ("out", "leads outside the allowed folders"),
    ("outdir/secret.txt", "leads outside the allowed folders"),
    ("big.txt", "over the limit of 1,000"),
    ("bin.dat", "binary"),
    ("pipe", "not a regular file"),
    ("sub", "is a folder"),
    ("nothing.txt", "no such file"),
])
def test_read_file_refuses_and_never_reads(tree, path, words):
    result = build_toolbox(["read_file"], allow=[tree], max_file_bytes=1000).run(call("read_file", path=path),
                                                                                  timeout=5)
    assert result.error and words in result.content, result.content
    assert "the password" not in result.content


def test_read_file_reads_inside_and_through_links_that_stay_inside(tree):
    box = readers(tree)
    assert box.run(call("read_file", path="a.txt")).content == "alpha\n"
    assert box.run(call("read_file", path="sub/./b.txt")).content == "beta\n"
    assert box.run(call("read_file", path=str(tree / "ok-link"))).content == "alpha\n"
    assert box.get("read_file").read_only and box.get("list_dir").read_only


def test_list_dir(tree):
    box = readers(tree)
    listing = box.run(call("list_dir")).content
    assert listing.splitlines()[0] == ".: 8 entries"
    assert "sub/" in listing and "out -> " in listing and "a.txt\t6 B" in listing.replace("6 bytes", "6 B")
    assert box.run(call("list_dir", path="..")).error
    assert box.run(call("list_dir", path="outdir")).error


def test_an_allowed_folder_must_exist(tmp_path):
    with pytest.raises(UsageError, match="no such folder"):
        build_toolbox(["read_file"], allow=[tmp_path / "nope"])
    with pytest.raises(UsageError, match="unknown tool 'rm_rf'"):
        build_toolbox(["rm_rf"])
    with pytest.raises(UsageError, match="search_docs needs documents"):
        build_toolbox(["search_docs"])


def test_run_shell(tmp_path):
    box = build_toolbox(["run_shell"], allow=[tmp_path])
    tool = box.get("run_shell")
    assert not tool.read_only and tool.confirm_each
    done = box.run(call("run_shell", command="echo hi; echo err >&2; pwd; exit 3"), timeout=10)
    assert not done.error and done.content == f"hi\nerr\n{tmp_path}\n[exit status 3]"
    t0 = time.perf_counter()
    slow = box.run(call("run_shell", command="echo started; sleep 30"), timeout=0.5)
    assert slow.error and "time limit of 0.5 s" in slow.content and "started" in slow.content
    assert time.perf_counter() - t0 < 3


def test_search_docs(tmp_path):
    from gptterm.docs.index import DocIndex

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "tea.md").write_text("# Tea\n\nGreen tea is steeped at 80 degrees for two minutes.\n")
    (tmp_path / "docs" / "bread.md").write_text("# Bread\n\nBread needs flour, water, salt and yeast.\n")
    index = DocIndex(tmp_path / "docs.sqlite3")
    index.update([tmp_path / "docs"])
    scope = builtin.DocsScope(index, index.scope([tmp_path / "docs"]), "the notes")
    box = build_toolbox(["search_docs"], docs=scope)
    found = box.run(call("search_docs", query="how hot for green tea?")).content
    assert found.startswith("[1] ") and "tea.md:" in found and "80 degrees" in found
    assert "no passage of the notes matches" in box.run(call("search_docs", query="quantum chromodynamics")).content
    index.close()


def test_fetch_url():
    class Pages(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            body = {"/page": b"<html><head><style>p{}</style><script>x()</script></head><body><h1>Title</h1>"
                             b"<p>Hello &amp; welcome.</p></body></html>",
                    "/img": b"\x89PNG...."}.get(self.path)
            if body is None:
                self.send_response(404)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8" if self.path == "/page" else "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        box = build_toolbox(["fetch_url"])
        assert not box.get("fetch_url").read_only  # it reaches the network: asks first
        assert box.run(call("fetch_url", url=f"{base}/page")).content == "Title\n\nHello & welcome."
        assert "answered HTTP 404" in box.run(call("fetch_url", url=f"{base}/nope")).content
        assert "image/png, not text" in box.run(call("fetch_url", url=f"{base}/img")).content
        assert "http:// or https://" in box.run(call("fetch_url", url="file:///etc/passwd")).content
    finally:
        httpd.shutdown()
        httpd.server_close()


# -- approvals ----------------------------------------------------------------------------------------

READER = Tool("read_file", "", {"type": "object"}, read_only=True)
WRITER = Tool("write_note", "", {"type": "object"}, source="mcp:notes")
SHELL = Tool("run_shell", "", {"type": "object"}, confirm_each=True)


def test_read_only_tools_never_ask_and_others_do():
    asked = []
    approvals = Approvals()
    assert approvals.decide(call("read_file"), READER, None).allowed
    verdict = approvals.decide(call("write_note"), WRITER, None)  # a pipe: nothing can ask
    assert not verdict.allowed and "--approve write_note" in verdict.reason
    assert approvals.decide(call("write_note"), WRITER, lambda c, t: asked.append(t.name) or "no").reason == \
        "the user declined to run write_note"
    assert asked == ["write_note"]


def test_always_is_remembered_but_not_for_shell_commands():
    approvals = Approvals()
    answers = iter(["always", "always"])
    assert approvals.decide(call("write_note"), WRITER, lambda c, t: next(answers)).allowed
    assert approvals.decide(call("write_note"), WRITER, None).allowed  # remembered: no asking, even in a pipe
    assert approvals.decide(call("run_shell"), SHELL, lambda c, t: next(answers)).allowed
    assert not approvals.decide(call("run_shell"), SHELL, None).allowed  # each command asks again


def test_approve_and_yes_answer_before_asking():
    assert Approvals(approved={"write_note"}).decide(call("write_note"), WRITER, None).allowed
    assert Approvals(approved={"mcp:notes"}).decide(call("write_note"), WRITER, None).allowed
    assert Approvals(approved={"run_shell"}).decide(call("run_shell"), SHELL, None).allowed
    assert Approvals(yes=True).decide(call("run_shell"), SHELL, None).allowed
    assert not Approvals(approved={"other"}).decide(call("write_note"), WRITER, None).allowed
