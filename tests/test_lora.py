"""LoRA adapters: --lora PATH[:SCALE], the checks before loading, the model's identity, and the store's listing —
on tiny generated adapters for the tiny model (and one for the bundled model)."""

from __future__ import annotations

import json

import pytest

from gptterm.engine.local import LocalEngine
from gptterm.errors import ModelError, ParamError, UsageError
from gptterm.history.store import HistoryStore
from gptterm.models import adapters
from gptterm.settings import Params
from tests.conftest import run_cli, write_config
from tests.fixtures.tiny_gguf import make_lora_for, make_tiny_lora
from tests.test_templates import one_line_error

GREEDY = Params().replace(temperature=0.0, max_tokens=24, seed=1)
PROMPT = [{"role": "user", "content": "Tell me about the sea."}]


@pytest.fixture(scope="module")
def loras(tmp_path_factory):
    d = tmp_path_factory.mktemp("lora")
    return {"good": make_tiny_lora(d / "tiny-lora.gguf"),
            "size": make_tiny_lora(d / "wrong-size.gguf", n_embd=32),
            "arch": make_tiny_lora(d / "gpt2-lora.gguf", architecture="gpt2"),
            "model": make_tiny_lora(d / "not-adapter.gguf", general_type="model")}


def greedy(engine) -> str:
    reply = engine.chat(PROMPT, GREEDY)
    reply.drain()
    return reply.text


def test_specs_and_lists():
    assert adapters.parse_spec("a.gguf") == adapters.LoraSpec("a.gguf", 1.0)
    assert adapters.parse_spec(" a.gguf:0.5 ") == adapters.LoraSpec("a.gguf", 0.5)
    assert adapters.parse_spec("C:\\x\\a.gguf").adapter == "C:\\x\\a.gguf"  # a colon inside the path
    assert adapters.parse_spec("a.gguf:-1").text() == "a.gguf:-1"
    with pytest.raises(ParamError, match="scale"):
        adapters.parse_spec("a.gguf:11")
    assert adapters.parse_list("none") == () and adapters.parse_list("a.gguf, b.gguf:0.5") == ("a.gguf", "b.gguf:0.5")
    assert adapters.LoraSpec("/x/style.gguf", 0.5).label() == "style×0.5"


def test_adapter_changes_greedy_output_and_scale_0_is_the_base(tiny_model, tiny_engine, loras):
    base = greedy(tiny_engine)
    with_lora = LocalEngine(tiny_model, ctx=512, gpu_layers=0, threads=1, lora=[str(loras["good"])])
    zero = LocalEngine(tiny_model, ctx=512, gpu_layers=0, threads=1, lora=[f"{loras['good']}:0"])
    half = LocalEngine(tiny_model, ctx=512, gpu_layers=0, threads=1, lora=[f"{loras['good']}:0.5"])
    try:
        assert greedy(with_lora) != base
        assert greedy(zero) == base
        assert greedy(half) not in (base, greedy(with_lora))
        # the adapter is part of the model's identity: its name, and the key of saved KV states
        assert with_lora.info.name == "tiny + tiny-lora" and half.info.name == "tiny + tiny-lora×0.5"
        assert with_lora.info.lora == (str(loras["good"]),)
        keys = {tiny_engine.state_key(), with_lora.state_key(), half.state_key()}
        assert len(keys) == 3 and zero.state_key() == tiny_engine.state_key()
    finally:
        for e in (with_lora, zero, half):
            e.close()


def test_an_adapter_for_the_bundled_model(bundled_model, smol_engine, tmp_path):
    lora = make_lora_for(bundled_model, tmp_path / "smol-style.gguf", scale=0.08)
    engine = LocalEngine(bundled_model, ctx=2048, gpu_layers=0, threads=1, lora=[str(lora)])
    try:
        assert greedy(engine) != greedy(smol_engine)
    finally:
        engine.close()


@pytest.mark.parametrize("kind, wanted", [
    ("size", "does not fit tiny-test: blk.0.attn_q.weight is 64×64 in the model but 32×32 in the adapter"),
    ("arch", "is for gpt2 models; tiny-test is llama"),
    ("model", "not-adapter.gguf is not a LoRA adapter"),
])
def test_a_mismatch_is_refused_in_one_line(tiny_model, loras, kind, wanted):
    with pytest.raises(ModelError) as err:
        LocalEngine(tiny_model, ctx=512, gpu_layers=0, threads=1, lora=[str(loras[kind])])
    assert wanted in str(err.value) and "\n" not in str(err.value)


def test_cli_flag_config_and_errors(tiny_model, loras, isolated_dirs, llama_server):
    proc = run_cli("-m", str(tiny_model), "--lora", f"{loras['good']}:0.5", "--max-tokens", "4", "--json", "hi")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["model"] == "tiny + tiny-lora×0.5"
    assert HistoryStore().latest().model == "tiny + tiny-lora×0.5"  # the history names the adapter
    line = one_line_error(run_cli("-m", str(tiny_model), "--lora", str(loras["arch"]), "hi"), ModelError.exit_code)
    assert "is for gpt2 models" in line
    line = one_line_error(run_cli("-m", str(tiny_model), "--lora", "/no/such.gguf", "hi"), ModelError.exit_code)
    assert line.startswith("gptterm: error: LoRA adapter:")
    line = one_line_error(run_cli("-m", str(loras["good"]), "hi"), ModelError.exit_code)
    assert "is a LoRA adapter for llama models, not a model" in line
    assert "scale" in one_line_error(run_cli("--lora", "x.gguf:99", "hi"), UsageError.exit_code)
    line = one_line_error(run_cli("--server", llama_server, "--lora", str(loras["good"]), "hi"), UsageError.exit_code)
    assert "apply to a local model" in line
    # the config file's list
    write_config(isolated_dirs, f'lora = ["{loras["good"]}"]\n')
    proc = run_cli("-m", str(tiny_model), "--max-tokens", "4", "--json", "--no-log", "hi")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["model"] == "tiny + tiny-lora"


def test_repl_set_lora(tiny_model, loras):
    proc = run_cli("chat", "-m", str(tiny_model), "--max-tokens", "4",
                   input=f"/set lora {loras['good']}\nhello\n/set lora {loras['size']}\nagain\n/set lora none\nbye\n")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr
    assert f"lora = {loras['good']}" in proc.stderr
    assert "does not fit tiny-test" in proc.stderr  # refused in one line; the chat goes on with the adapter it had
    assert "lora = none" in proc.stderr
    models = [m.model for m in HistoryStore().latest().messages if m.role == "assistant"]
    assert models == ["tiny + tiny-lora", "tiny + tiny-lora", "tiny"]


def test_models_ls_and_show_know_adapters(tiny_model, loras):
    assert run_cli("models", "import", str(tiny_model), "--name", "tiny").returncode == 0
    proc = run_cli("models", "import", str(loras["good"]), "--name", "tiny-lora")
    assert proc.returncode == 0, proc.stderr
    listing = run_cli("models", "ls")
    assert listing.returncode == 0, listing.stderr
    adapter_rows = listing.stdout.split("LORA ADAPTER")[1].splitlines()
    assert adapter_rows[1].split()[:3] == ["tiny-lora", "llama", "models"]
    assert "tiny-lora" not in listing.stdout.split("LORA ADAPTER")[0]  # not listed as a model
    data = {m["name"]: m for m in json.loads(run_cli("models", "ls", "--json").stdout)}
    assert data["tiny-lora"]["kind"] == "lora" and data["tiny-lora"]["base_architecture"] == "llama"
    assert data["tiny"]["kind"] == "model"
    shown = run_cli("models", "show", "tiny-lora")
    assert shown.returncode == 0, shown.stderr
    lines = dict(line.split(None, 1) for line in shown.stdout.splitlines() if " " in line.strip())
    assert lines["kind"].startswith("LoRA adapter (lora) for llama models") and lines["fits"] == "tiny"
    assert "gptterm -m tiny --lora tiny-lora" in shown.stderr
    # a local adapter's name works as --lora
    proc = run_cli("-m", "tiny", "--lora", "tiny-lora", "--max-tokens", "4", "--json", "--no-log", "hi")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["model"] == "tiny + tiny-lora"


def test_models_pull_of_an_adapter_repo(hub, tiny_model):
    """A Hub repo holding an adapter: pulled, listed and shown as one, and usable by its name with --lora."""
    pulled = run_cli("models", "pull", "test/Tiny-Style-LoRA-GGUF")
    assert pulled.returncode == 0, pulled.stderr
    name = pulled.stdout.strip()
    assert name == "test/Tiny-Style-LoRA-GGUF:F16"
    assert "is a LoRA adapter for llama models" in pulled.stderr and "chat with it" not in pulled.stderr
    again = run_cli("models", "pull", "test/Tiny-Style-LoRA-GGUF", "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["kind"] == "lora"
    assert run_cli("models", "import", str(tiny_model), "--name", "tiny").returncode == 0
    data = {m["name"]: m for m in json.loads(run_cli("models", "ls", "--json").stdout)}
    assert data[name]["kind"] == "lora" and data[name]["source"] == "hub"
    shown = run_cli("models", "show", name)
    assert "fits     tiny" in shown.stdout, shown.stdout
    proc = run_cli("-m", "tiny", "--lora", name, "--max-tokens", "4", "--json", "--no-log", "hi")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["model"] == "tiny + Tiny-Style-LoRA-GGUF:F16"  # the adapter as it was named
    refused = run_cli("-m", name, "--max-tokens", "4", "--no-log", "hi")
    assert refused.returncode != 0 and "is a LoRA adapter" in refused.stderr and "Traceback" not in refused.stderr
