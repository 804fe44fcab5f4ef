"""A misbehaving server (tests/fixtures/fake_openai.py): every failure is one clear line, nothing is lost."""

from __future__ import annotations

import json
import threading
import time

import pytest

from gptterm.engine.openai_http import ServerAPI, normalize_base_url
from gptterm.engine.remote import RemoteEngine
from gptterm.errors import ConfigError, ModelError, RemoteError
from gptterm.history.store import HistoryStore
from gptterm.servers import ServerProfile
from gptterm.settings import Params, load_config
from tests.conftest import free_port, run_cli, write_config
from tests.fixtures.fake_openai import API_KEY, MODEL

FAST = ("--temperature", "0", "--max-tokens", "20")


def fails(proc, code, *needles):
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("gptterm: error: "), proc.stderr
    for needle in needles:
        assert needle in last, last
    return proc


def profile(isolated_dirs, url, **extra):
    """A [servers.fake] profile with short retry waits, as a user could write it."""
    lines = [f'url = "{url}"', "retry_delay = 0.01"] + [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
    write_config(isolated_dirs, "[servers.fake]\n" + "\n".join(lines) + "\n")
    return "fake"


def last_conversation():
    return HistoryStore().latest()


def test_server_down_is_one_line():
    fails(run_cli("--server", f"http://127.0.0.1:{free_port()}/v1", "hi"), 12,
          "cannot connect to the server at http://127.0.0.1:", "is it running")


def test_wrong_url_says_where_the_api_usually_is(fake_server):
    fails(run_cli("--server", fake_server.url("wrongurl"), "hi"), 12, "no OpenAI-compatible API at", "/v1")


def test_not_a_url_nor_a_profile(isolated_dirs):
    fails(run_cli("--server", "gpu-box", "hi"), 3, "unknown server 'gpu-box'")


def test_401_names_the_variable_and_never_shows_the_key(fake_server, isolated_dirs):
    url = fake_server.url("auth")
    fails(run_cli("--server", url, "hi"), 12, "(401 Unauthorized)", "no API key was sent", "GPTTERM_API_KEY")
    wrong = "sk-wrong-key-do-not-print-4242"
    proc = fails(run_cli("--server", url, "-v", "hi", env={"GPTTERM_API_KEY": wrong}), 12,
                 "the API key from GPTTERM_API_KEY was not accepted")
    assert wrong not in proc.stdout + proc.stderr and "Invalid API key: ***" in proc.stderr  # even when echoed
    assert fake_server.requests[-1]["headers"]["Authorization"] == f"Bearer {wrong}"
    # the right key, from a profile's own variable: works, and appears nowhere
    write_config(isolated_dirs, f'[servers.team]\nurl = "{url}"\napi_key_env = "TEAM_KEY"\n')
    env = {"TEAM_KEY": API_KEY, "OPENAI_API_KEY": wrong}
    outputs = [run_cli("--server", "team", "-v", "--json", "hi", env=env),
               run_cli("chat", "--server", "team", input="hello\n", env=env),
               run_cli("doctor", "--server", "team", env=env),
               run_cli("doctor", "--json", "--server", "team", env=env),
               run_cli("config", "show", env=env)]
    for proc in outputs:
        assert proc.returncode == 0, proc.stderr
        assert API_KEY not in proc.stdout + proc.stderr
    assert "authorized" in outputs[0].stdout and "from TEAM_KEY" in outputs[2].stdout
    assert {r["headers"].get("Authorization") for r in fake_server.sent("auth", "/v1/chat/completions")} \
        >= {f"Bearer {API_KEY}"}
    for path in isolated_dirs["data"].rglob("*"):
        if path.is_file():
            assert API_KEY.encode() not in path.read_bytes(), path
    assert API_KEY not in (isolated_dirs["config"] / "config.toml").read_text()


def test_prompt_beyond_the_real_servers_context_is_explained(llama_server):
    # llama-cpp-python's server does not report its context (2048 here); told 4096, gptterm sends a
    # prompt that the server refuses by ending the stream at once.
    proc = run_cli("--server", llama_server, "--ctx", "4096", "--max-tokens", "8", "word " * 2500)
    fails(proc, 12, "before any text", "set the profile's ctx or --ctx to the server's size")
    assert last_conversation().messages[-1].role == "user"  # the question is kept, no empty reply


def test_model_the_server_does_not_list(fake_server):
    fails(run_cli("--server", fake_server.url("ok"), "-m", "gpt-9", "hi"), 4,
          "has no model 'gpt-9'", f"it has: {MODEL}")


def test_404_model_from_the_completion_endpoint(fake_server):
    fails(run_cli("--server", fake_server.url("nomodel"), "hi"), 4, "has no such model", "does not exist")


def test_429_is_retried_then_succeeds(fake_server, isolated_dirs):
    name = profile(isolated_dirs, fake_server.url("busy"))
    proc = run_cli("--server", name, *FAST, "hi")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "finally through"
    assert len(fake_server.sent("busy", "/v1/chat/completions")) == 3


def test_500s_exhaust_the_retries(fake_server, isolated_dirs):
    name = profile(isolated_dirs, fake_server.url("broken"), retries=2)
    fails(run_cli("--server", name, "hi"), 12, "failed (500 Internal Server Error) after 3 tries", "CUDA out of memory")
    assert len(fake_server.sent("broken", "/v1/chat/completions")) == 3
    [conv] = HistoryStore().list_conversations(limit=None)  # the question is kept for a retry
    assert [m.content for m in HistoryStore().get(conv.id).messages] == ["hi"]


def scripted_server(*answers):
    """A ServerAPI whose server gives each request the next (status, headers) of ``answers``, the last one
    from then on; and the list of requests it got."""
    import httpx2 as httpx

    got = []

    def answer(request):
        got.append(request)
        status, headers = answers[min(len(got), len(answers)) - 1]
        if status != 200:
            return httpx.Response(status, headers=headers, json={"error": {"message": "not now"}})
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json={"data": [{"id": "m"}]})
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, text="data: [DONE]\n\n")

    return ServerAPI("http://box:8000", retries=3, retry_delay=0.01, transport=httpx.MockTransport(answer)), got


def test_408_is_retried_like_429_and_5xx():
    api, got = scripted_server((408, {}), (503, {"Retry-After": "0"}), (200, {}))
    assert api.request_json("GET", "/models") == {"data": [{"id": "m"}]}
    assert len(got) == 3


def test_a_retry_after_beyond_the_cap_fails_at_once():
    api, got = scripted_server((429, {"Retry-After": "120"}))
    start = time.monotonic()
    with pytest.raises(RemoteError, match=r"^the server at http://box:8000/v1 is busy \(429 Too Many Requests\)"):
        api.request_json("GET", "/models")
    assert len(got) == 1 and time.monotonic() - start < 5


def test_stop_ends_a_retry_wait_of_the_event_stream():
    api, got = scripted_server((503, {"Retry-After": "25"}), (200, {}))
    stop = threading.Event()
    threading.Timer(0.1, stop.set).start()
    start = time.monotonic()
    with api.events("/chat/completions", {"stream": True}, stop=stop) as events:
        assert list(events) == []
    assert len(got) == 1 and time.monotonic() - start < 5


def test_stream_dropped_mid_reply_keeps_the_partial_reply(fake_server):
    proc = fails(run_cli("--server", fake_server.url("drop"), *FAST, "tell me"), 12,
                 "dropped mid-reply", "after 3 tokens")
    assert proc.stdout == "The first words\n"
    assert "the partial reply is kept in history, marked incomplete" in proc.stderr
    msgs = last_conversation().messages
    assert [m.content for m in msgs] == ["tell me", "The first words"]
    assert msgs[1].stats["finish_reason"] == "error"


def test_stream_dropped_in_json_mode_still_prints_what_there_is(fake_server):
    proc = fails(run_cli("--server", fake_server.url("drop"), *FAST, "--json", "tell me"), 12, "dropped mid-reply")
    data = json.loads(proc.stdout)
    assert data["text"] == "The first words" and data["finish_reason"] == "error" and "dropped" in data["error"]


def test_stream_dropped_in_the_repl_keeps_going(fake_server):
    proc = run_cli("chat", "--server", fake_server.url("drop"), input="first\nsecond\n")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr
    assert proc.stderr.count("dropped mid-reply") == 2
    msgs = last_conversation().messages
    assert [m.content for m in msgs] == ["first", "The first words", "second", "The first words"]


def test_generate_keeps_a_dropped_sample(fake_server):
    fails(run_cli("generate", "--server", fake_server.url("drop"), "--no-echo", "Once"), 12, "dropped mid-reply")
    store = HistoryStore()
    [c] = store.list_conversations(limit=None, kinds=("generate",))
    assert [m.content for m in store.get(c.id).messages] == ["Once", "The first words"]


def test_invalid_sse_and_non_stream_answers(fake_server):
    proc = fails(run_cli("--server", fake_server.url("badsse"), "hi"), 12, "sent an event that is not JSON")
    assert proc.stdout == "ok\n"
    assert last_conversation().messages[-1].stats["finish_reason"] == "error"
    fails(run_cli("--server", fake_server.url("html"), "hi"), 12, "is not an event stream (text/html)")


def test_strict_openai_server_gets_only_standard_parameters(fake_server):
    proc = run_cli("--server", fake_server.url("strict"), *FAST, "hi")
    assert proc.returncode == 0 and proc.stdout.strip() == "strictly standard", proc.stderr
    first, second = fake_server.sent("strict", "/v1/chat/completions")
    assert first["body"]["top_k"] == 40 and first["body"]["repeat_penalty"] == 1.1
    assert "top_k" not in second["body"]
    assert second["body"]["temperature"] == 0.0 and second["body"]["max_tokens"] == 20
    assert isinstance(second["body"]["seed"], int) and second["body"]["stream"] is True


def test_sampling_parameters_reach_the_server(fake_server):
    proc = run_cli("--server", fake_server.url("ok"), "--temperature", "0.3", "--top-p", "0.8", "--top-k", "7",
                   "--min-p", "0.02", "--repeat-penalty", "1.2", "--max-tokens", "33", "--seed", "5", "-s", "be brief",
                   "hi")
    assert proc.returncode == 0, proc.stderr
    body = fake_server.sent("ok", "/v1/chat/completions")[-1]["body"]
    assert body["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert (body["temperature"], body["top_p"], body["top_k"], body["min_p"], body["repeat_penalty"],
            body["max_tokens"], body["seed"], body["model"]) == (0.3, 0.8, 7, 0.02, 1.2, 33, 5, MODEL)


# -- the engine directly --------------------------------------------------------------


def test_cancel_while_the_server_is_silent_stops_at_once(fake_server):
    engine = RemoteEngine(ServerProfile(name="t", url=fake_server.url("hang")))
    try:
        reply = engine.chat([{"role": "user", "content": "long prompt"}], Params())
        timer = threading.Timer(0.2, engine.cancel)
        timer.start()
        assert reply.drain() == ""
        assert reply.finish_reason == "cancelled"
        assert fake_server.hung_up.wait(10), "the server never saw the client leave"
    finally:
        engine.close()


def test_estimated_tokens_when_the_server_cannot_count(fake_server):
    engine = RemoteEngine(ServerProfile(name="t", url=fake_server.url("ok")), ctx=300)
    try:
        assert engine.info.token_counts == "estimate"
        assert engine.n_ctx == 300 and "--ctx" in engine.info.ctx_source
        text = "héllo wörld, 你好"
        assert engine.count_tokens(text) == len(engine.tokenize(text))
        assert engine.detokenize(engine.tokenize(text)) == text
        assert engine.count_tokens("abcdefghijkl") == 4  # 3 bytes a token: over-counts English on purpose
    finally:
        engine.close()


def test_summarize_chunks_on_estimated_counts(fake_server, tmp_path):
    doc = tmp_path / "long.txt"
    doc.write_text("\n\n".join(f"Paragraph {i} talks about one more topic in some detail." for i in range(60)))
    proc = run_cli("summarize", "--server", fake_server.url("ok"), "--ctx", "300", "--json", str(doc))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert len([c for c in data["chunks"] if not c.get("final")]) >= 3


def test_llama_server_context_and_tokenizer_are_used(fake_server):
    engine = RemoteEngine(ServerProfile(name="t", url=fake_server.url("llamaserver")), ctx=4096)
    try:
        assert engine.n_ctx == 1536 and engine.info.ctx_source == "server"
        assert engine.info.token_counts.startswith("server (/tokenize")
        assert engine.count_tokens("one two three") == 3
        # rendered by the server's template, then counted: 2 words + 2 markers, +1 for BOS
        assert engine.count_chat_tokens([{"role": "user", "content": "hi there"}]) == 5
    finally:
        engine.close()
    bounded = RemoteEngine(ServerProfile(name="t", url=fake_server.url("llamaserver"), ctx=1000))
    try:
        assert bounded.n_ctx == 1000  # a smaller ctx asked for is respected
    finally:
        bounded.close()


# -- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize("text,needle", [
    ('[servers.a]\nmodel = "x"\n', "servers.a.url must be an http:// or https:// URL"),
    ('[servers.a]\nurl = "ftp://x"\n', "servers.a.url must be"),
    ('[servers.a]\nurl = "http://x"\napi_key = "sk-123"\n', "unknown key 'api_key'"),
    ('[servers.a]\nurl = "http://x"\nretries = -1\n', "retries must be at least 0"),
    ('server = "nowhere"\n', "neither a URL nor a [servers.nowhere] profile"),
    ('[servers.local]\nurl = "http://x"\n', "'local' cannot name a server profile"),
])
def test_bad_server_profiles_are_config_errors(isolated_dirs, text, needle):
    write_config(isolated_dirs, text)
    with pytest.raises(ConfigError) as err:
        load_config()
    assert needle in str(err.value)


def test_server_precedence_flag_env_then_config(isolated_dirs, monkeypatch):
    from gptterm.servers import resolve_server, server_spec

    write_config(isolated_dirs, 'server = "cfg"\n[servers.cfg]\nurl = "http://cfg:1/v1"\n')
    config = load_config()
    assert resolve_server(server_spec(None, config), config).url == "http://cfg:1/v1"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://openai-env:2/v1")
    assert server_spec(None, config) == "http://openai-env:2/v1"
    monkeypatch.setenv("GPTTERM_SERVER", "local")
    assert resolve_server(server_spec(None, config), config) is None
    assert server_spec("http://flag:3", config) == "http://flag:3"


def test_config_command_sets_the_server(isolated_dirs):
    bad = run_cli("config", "set", "server", "gpu-box")
    assert bad.returncode == 2 and "server must be an http(s):// URL" in bad.stderr
    assert run_cli("config", "set", "server", "http://box:8000/v1").returncode == 0
    assert "http://box:8000/v1" in run_cli("config", "show").stdout
    assert load_config().server == "http://box:8000/v1"
    assert run_cli("config", "unset", "server").returncode == 0
    assert load_config().server is None


def test_base_url_normalization():
    assert normalize_base_url("http://h:8000") == "http://h:8000/v1"
    assert normalize_base_url("http://h:8000/v1/") == "http://h:8000/v1"
    assert normalize_base_url("https://api.example.com/openai/v1") == "https://api.example.com/openai/v1"
    with pytest.raises(RemoteError):
        normalize_base_url("localhost:8000")


def test_model_errors_are_model_errors(fake_server):
    with pytest.raises(ModelError):
        RemoteEngine(ServerProfile(name="t", url=fake_server.url("ok"), model="missing"))
