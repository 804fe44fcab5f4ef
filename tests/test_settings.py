import pytest

from gptterm.errors import ConfigError, ParamError
from gptterm.settings import BY_NAME, PARAMS, Params, find_param, load_config, save_config


def test_every_param_has_help_default_and_valid_default():
    for p in PARAMS:
        assert p.help
        assert p.check(p.default) == p.default


@pytest.mark.parametrize("name,text,reason", [
    ("temperature", "-1", "temperature must be in 0..5, not -1"),
    ("top_p", "2", "top_p must be in 0..1, not 2"),
    ("ctx", "0", "ctx must be in 64..1048576, not 0"),
    ("max_tokens", "many", "max_tokens must be an integer, not 'many'"),
    ("top_k", "1.5", "top_k must be an integer, not '1.5'"),
    ("temperature", "nan", "temperature must be a finite number"),
])
def test_bad_values_are_refused_with_their_reason(name, text, reason):
    with pytest.raises(ParamError) as err:
        find_param(name).parse(text)
    assert reason in str(err.value)


def test_parse_accepts_aliases_and_auto():
    assert find_param("temp").name == "temperature"
    assert find_param("top-p").name == "top_p"
    assert find_param("ngl").name == "gpu_layers"
    assert BY_NAME["threads"].parse("auto") is None
    assert BY_NAME["seed"].parse("42") == 42
    assert BY_NAME["temperature"].parse("0.2") == 0.2


@pytest.mark.parametrize("name,value,shown,edited", [
    ("temperature", 0.7, "0.7", "0.7"),
    ("temperature", 1.0, "1", "1.0"),
    ("max_tokens", 1024, "1024", "1024"),
    ("seed", None, "random", ""),
    ("threads", None, "auto", ""),
    ("system", "be brief", "'be brief'", "be brief"),
    ("system", "", "''", ""),
])
def test_one_format_for_display_and_one_for_editing(name, value, shown, edited):
    param = BY_NAME[name]
    assert param.format(value) == shown
    assert param.edit_text(value) == edited
    assert param.parse(edited) == value  # what a field holds reads back as the same value


def test_describe_shows_the_default_as_format_does():
    for p in PARAMS:
        assert p.describe().endswith(f"default {p.format(p.default)}")


def test_save_config_failure_is_a_config_error_and_keeps_the_file(isolated_dirs, monkeypatch):
    from gptterm import atomic

    path = isolated_dirs["config"] / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text("temperature = 0.2\n")

    def full_disk(tmp, data, durable=True):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic, "write_bytes", full_disk)
    with pytest.raises(ConfigError, match="cannot write config file .*No space left on device"):
        save_config({"top_k": 10})
    assert path.read_text() == "temperature = 0.2\n"


def test_unknown_parameter_names_the_known_ones():
    with pytest.raises(ParamError, match="unknown parameter 'tempo'.*temperature"):
        find_param("tempo")


def test_params_replace_validates():
    p = Params()
    assert p.replace(temperature=0).temperature == 0.0
    with pytest.raises(ParamError):
        p.replace(top_p=1.5)


def test_config_overrides_defaults(isolated_dirs):
    path = isolated_dirs["config"] / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text('# my settings\ntemperature = 0.2\nctx = 2048\nmodel = "/m.gguf"\n')
    cfg = load_config()
    assert cfg.params.temperature == 0.2
    assert cfg.params.ctx == 2048
    assert cfg.params.top_p == BY_NAME["top_p"].default
    assert cfg.model == "/m.gguf"


@pytest.mark.parametrize("content,needle", [
    ("temperature = -3\n", "temperature must be in 0..5"),
    ("colour = 'blue'\n", "unknown parameter 'colour'"),
    ("temperature = \n", "cannot read config file"),
    ("ctx = 'big'\n", "ctx must be a number"),
])
def test_bad_config_is_one_clear_error(isolated_dirs, content, needle):
    path = isolated_dirs["config"] / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.raises(ConfigError, match=needle):
        load_config()


def test_save_config_keeps_comments_and_replaces_atomically(isolated_dirs):
    path = isolated_dirs["config"] / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text("# keep me\ntemperature = 0.2\n")
    save_config({"top_k": 10, "temperature": 0.5})
    text = path.read_text()
    assert "# keep me" in text
    cfg = load_config()
    assert (cfg.params.temperature, cfg.params.top_k) == (0.5, 10)
    assert [p.name for p in path.parent.iterdir()] == ["config.toml"]  # no temp file left behind


def test_save_config_does_not_touch_a_broken_file(isolated_dirs):
    path = isolated_dirs["config"] / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text("temperature = = 1\n")
    with pytest.raises(ConfigError):
        save_config({"top_k": 10})
    assert path.read_text() == "temperature = = 1\n"


def test_presets_theme_and_keymap_in_config(isolated_dirs):
    path = isolated_dirs["config"] / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text('theme = "nord"\n[presets.mine]\ntemperature = 0.4\n[keymap]\nnew-conversation = "ctrl+t"\n')
    cfg = load_config()
    assert cfg.theme == "nord"
    assert cfg.all_presets()["mine"] == {"temperature": 0.4}
    assert {"precise", "balanced", "creative"} <= set(cfg.all_presets())
    assert cfg.keymap == {"new-conversation": "ctrl+t"}
    save_config({"presets": {"other": {"top_k": 5}}})
    assert set(load_config().presets) == {"mine", "other"}


@pytest.mark.parametrize("content,needle", [
    ("[presets.bad]\ntemperature = 9\n", "presets.bad: temperature must be in 0..5"),
    ("presets = 3\n", "presets must be a table"),
    ("[keymap]\nsend = 4\n", "keymap.send must be a string"),
    ("theme = 1\n", "theme must be str"),
])
def test_bad_tables_in_config(isolated_dirs, content, needle):
    path = isolated_dirs["config"] / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.raises(ConfigError, match=needle):
        load_config()
