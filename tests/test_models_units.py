"""Pure pieces of the model code: file names, quantizations, pull specs, memory fit."""

from __future__ import annotations

import pytest

from gptterm.errors import UsageError
from gptterm.models import catalog
from gptterm.models.hub import PullSpec, RemoteFile, choose, group_files, parse_spec, RepoListing
from gptterm.models.machine import Machine, parse_nvidia_smi
from gptterm.models.names import closest_quant, human_size, parse_quant, split_part, unsafe_repo_path


@pytest.mark.parametrize("name, quant", [
    ("Llama-3.2-1B-Instruct-Q4_K_M.gguf", "Q4_K_M"),
    ("qwen2.5-0.5b-instruct-q4_k_m.gguf", "Q4_K_M"),
    ("SmolLM2-135M-Instruct.Q4_1.gguf", "Q4_1"),
    ("qwen2.5-7b-instruct-q4_k_m-00001-of-00002.gguf", "Q4_K_M"),
    ("Q8_0/Model-Q8_0-00002-of-00003.gguf", "Q8_0"),
    ("gemma-3-4b-it-UD-Q4_K_XL.gguf", "Q4_K_XL"),
    ("model-IQ3_XXS.gguf", "IQ3_XXS"),
    ("model-bf16.gguf", "BF16"),
    ("model.fp16.gguf", "F16"),
    ("Qwen2-VL-mmproj.gguf", None),  # "Qwen2" is no quantization
])
def test_parse_quant(name, quant):
    assert parse_quant(name) == quant


def test_split_part():
    part = split_part("Q4_K_M/model-Q4_K_M-00002-of-00003.gguf")
    assert (part.prefix, part.part, part.count) == ("Q4_K_M/model-Q4_K_M", 2, 3)
    assert split_part("model-Q4_K_M.gguf") is None


def test_closest_quant_prefers_q4_k_m_then_nearest_bits():
    assert closest_quant(["Q8_0", "Q4_K_M", "Q2_K"]) == "Q4_K_M"
    assert closest_quant(["q8_0", "q4_k_m"]) == "q4_k_m"
    assert closest_quant(["Q8_0", "Q3_K_M"]) == "Q3_K_M"
    assert closest_quant(["Q8_0", "Q5_K_M", "Q3_K_M"]) == "Q5_K_M"
    assert closest_quant(["F16", "Q8_0"]) == "Q8_0"
    assert closest_quant([]) is None


@pytest.mark.parametrize("path", ["../x.gguf", "a/../../x.gguf", "/etc/x.gguf", "a\\b.gguf", "C:x.gguf",
                                  "a//b.gguf", "./x.gguf", "x\n.gguf", ""])
def test_unsafe_repo_paths(path):
    assert unsafe_repo_path(path) is not None


def test_safe_repo_paths():
    assert unsafe_repo_path("Q4_K_M/model-Q4_K_M-00001-of-00002.gguf") is None
    assert unsafe_repo_path("model.Q4_K_M.gguf") is None


def test_human_size_is_decimal_like_the_hub():
    assert [human_size(n) for n in (512, 478_208, 1_060_000_000, 4.92e9)] == ["512 B", "478 kB", "1.1 GB",
                                                                              "4.9 GB"]


def test_parse_spec_forms():
    assert parse_spec("qwen2.5-0.5b") == PullSpec("Qwen/Qwen2.5-0.5B-Instruct-GGUF",
                                                  file="qwen2.5-0.5b-instruct-q4_k_m.gguf", catalog_id="qwen2.5-0.5b",
                                                  prefer="Q4_K_M")
    assert parse_spec("bartowski/Llama-3.2-1B-Instruct-GGUF:q8_0") == PullSpec(
        "bartowski/Llama-3.2-1B-Instruct-GGUF", quant="Q8_0")
    assert parse_spec("hf.co/owner/name:Q4_K_M") == PullSpec("owner/name", quant="Q4_K_M")
    assert parse_spec("https://huggingface.co/owner/name/resolve/main/sub/m.gguf") == PullSpec(
        "owner/name", file="sub/m.gguf")
    for bad in ("justaname", "owner/name/file.bin", "bad name/x", "owner/name/f.gguf:Q4", "a/b:"):
        with pytest.raises(UsageError):
            parse_spec(bad)


def test_choose_and_split_grouping():
    files = [RemoteFile(f"m-Q4_K_M-0000{i}-of-00002.gguf", 10, "a" * 64, None) for i in (1, 2)]
    files += [RemoteFile("m-Q8_0.gguf", 30, "b" * 64, None), RemoteFile("m-Q2_K-00001-of-00002.gguf", 5, "c" * 64, None)]
    models = group_files("o/n", "c0", files)
    assert [(m.filename, len(m.files), m.problem is None) for m in models] == [
        ("m-Q2_K-00001-of-00002.gguf", 1, False), ("m-Q4_K_M-00001-of-00002.gguf", 2, True), ("m-Q8_0.gguf", 1, True)]
    listing = RepoListing("o/n", "c0", False, models)
    assert choose(listing, PullSpec("o/n")).filename == "m-Q4_K_M-00001-of-00002.gguf"
    assert choose(listing, PullSpec("o/n", file="m-Q4_K_M-00002-of-00002.gguf")).size == 20


def test_memory_fit():
    m = Machine(ram_total=8 * 10**9, ram_available=4 * 10**9)
    assert (m.fits(3 * 10**9), m.fits(6 * 10**9), m.fits(9 * 10**9)) == ("yes", "tight", "no")
    gpu = Machine(8 * 10**9, 4 * 10**9, "GPU", vram_total=6 * 10**9, vram_free=5 * 10**9, gpu_usable=True)
    assert (gpu.fits(5 * 10**9), gpu.fits(6 * 10**9), gpu.fits(8 * 10**9), gpu.fits(20 * 10**9)) == (
        "yes", "tight", "yes", "no")  # 8 GB: 5 on the GPU, 3 from RAM
    unusable = Machine(8 * 10**9, 4 * 10**9, "GPU", vram_total=80 * 10**9, vram_free=80 * 10**9)
    assert unusable.fits(20 * 10**9) == "no"  # a CPU-only build does not count the GPU
    assert parse_nvidia_smi("NVIDIA H200, 143771, 143000\n") == ("NVIDIA H200", 143771 * 2**20, 143000 * 2**20)
    assert parse_nvidia_smi("garbage") is None


def test_catalog_spans_135m_to_8b_with_kv_cache_estimates():
    ids = [e.id for e in catalog.CATALOG]
    chat = [e.id for e in catalog.CATALOG if e.kind == "chat"]
    assert ids[0] == "smollm2-135m" and chat[-1] == "gemma3-12b" and "llama3.1-8b" in chat
    families = {e.family for e in catalog.CATALOG}
    assert {"SmolLM2", "Qwen2.5", "Llama 3.2"} <= families
    e = catalog.find_entry("llama3.1-8b")
    assert e.kv_cache_bytes(4096) == 2 * 32 * 8 * 128 * 2 * 4096  # 512 MiB of f16 K and V
    assert e.memory_needed(8192) > e.memory_needed(4096) > e.size


def test_lookup_by_name_alias_and_ambiguity():
    from pathlib import Path

    from gptterm.errors import ModelError
    from gptterm.models.store import LocalModel, lookup

    a = LocalModel("x/A-GGUF:Q4_K_M", Path("/a/m.gguf"), "hub", aliases=("m.gguf", "m"))
    b = LocalModel("y/B-GGUF:Q4_K_M", Path("/b/m.gguf"), "hub", aliases=("m.gguf", "m"))
    assert lookup("x/a-gguf:q4_k_m", [a, b]) is a  # names are case-insensitive, like the Hub's
    assert lookup("nothing", [a, b]) is None
    with pytest.raises(ModelError, match="'m.gguf' matches several models: x/A-GGUF:Q4_K_M, y/B-GGUF:Q4_K_M"):
        lookup("m.gguf", [a, b])


def test_http_get_follows_redirects_and_keeps_the_token_on_its_origin(hub):
    from gptterm.models import http_get

    url = f"{hub.url}/test/Tiny-Gated-GGUF/resolve/main/tiny-gated-Q4_K_M.gguf"
    with http_get.get(url, {"Authorization": "Bearer hf_x", "Range": "bytes=10-"}, timeout=10) as r:
        body = b"".join(r.chunks())
    f = hub.repos["test/Tiny-Gated-GGUF"].files["tiny-gated-Q4_K_M.gguf"]
    assert r.status == 206 and body == f.data[10:]
    resolve, cdn = hub.requests
    assert resolve[3]["authorization"] == "Bearer hf_x" and "authorization" not in cdn[3]
    assert cdn[3]["range"] == "bytes=10-"
    with pytest.raises(http_get.HTTPStatusError) as err:
        http_get.get(f"{hub.url}/test/Tiny-Gated-GGUF/resolve/main/nothing.gguf", {"Authorization": "Bearer x"},
                     timeout=10)
    assert err.value.status == 404


# -- search and pull orchestration, shared by the CLI and the Models pane ------------------------


def test_find_lists_a_repo_or_searches_the_text(hub):
    from gptterm.models import hub as hub_api

    listing = hub_api.find(" test/Tiny-Chat-GGUF ")
    assert isinstance(listing, RepoListing) and listing.repo == "test/Tiny-Chat-GGUF" and listing.models
    hits = hub_api.find("tiny", limit=2)
    assert isinstance(hits, list) and 0 < len(hits) <= 2 and all(h.repo.startswith("test/Tiny") for h in hits)
    assert isinstance(hub_api.find("test/No-Such-GGUF"), list)  # names no repo: searched as text
    assert not hub.requests_to("hub", contains="/api/models/tiny")  # text without one slash is never a repo


def test_plan_pull_turns_a_spec_into_what_pull_takes(hub):
    from gptterm.models import download

    plan = download.plan_pull("test/Tiny-Chat-GGUF:Q4_K_M")
    assert plan.model.filename == "tiny-chat-Q4_K_M.gguf" and plan.name == "test/Tiny-Chat-GGUF:Q4_K_M"
    assert not plan.already_here and plan.to_download == plan.model.size
    assert download.pull(plan.model).model.name == plan.name
    assert download.plan_pull(plan.name).already_here


# -- the one retry policy, through the Hub and a download ------------------------------------------


def _http_date(seconds_from_now: float) -> str:
    from datetime import datetime, timedelta, timezone
    from email.utils import format_datetime

    return format_datetime(datetime.now(timezone.utc) + timedelta(seconds=seconds_from_now), usegmt=True)


def test_a_retry_after_beyond_the_cap_fails_at_once_on_the_hub_and_its_storage(hub, monkeypatch):
    import time

    from gptterm.errors import HubError
    from gptterm.models import download, hub as hub_api

    monkeypatch.setenv("GPTTERM_HUB_RETRIES", "3")
    start = time.monotonic()
    hub.fail("info", 429, Retry_After="120")
    with pytest.raises(HubError, match="rate-limiting requests .*try again in 120 s"):
        hub_api.list_repo("test/Tiny-Chat-GGUF")
    assert len(hub.requests_to("hub", "GET", "/api/models/test/Tiny-Chat-GGUF")) == 1
    plan = download.plan_pull("test/Tiny-Chat-GGUF")
    hub.fail("cdn", 503, Retry_After=_http_date(300))  # an HTTP date counts the same as seconds
    with pytest.raises(HubError, match=r"the Hub failed \(HTTP 503\)"):
        download.pull(plan.model)
    assert len(hub.requests_to("cdn")) == 1 and time.monotonic() - start < 10


def test_cancel_ends_a_download_waiting_to_retry(hub, monkeypatch):
    import threading
    import time

    from gptterm.models import download

    monkeypatch.setenv("GPTTERM_HUB_RETRIES", "3")
    plan = download.plan_pull("test/Tiny-Chat-GGUF")
    hub.fail("cdn", 503, Retry_After="25")
    cancel = threading.Event()
    notes: list[str] = []
    threading.Timer(0.2, cancel.set).start()
    start = time.monotonic()
    with pytest.raises(download.DownloadCancelled):
        download.pull(plan.model, cancel=cancel, notify=notes.append)
    assert time.monotonic() - start < 10
    assert notes == ["download failed (HTTP 503); retrying in 25 s (1/3)"]
