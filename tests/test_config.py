"""Config loading: defaults, validation errors that name file, section, key and values."""

from __future__ import annotations

from pathlib import Path

import pytest

from dia_sim.options import SECTIONS, config_file_text, load_ap_config
from l1db.config import (
    L1DB_SECTIONS,
    TOOL_SECTIONS,
    ConfigError,
    L1dbConfig,
    L1dbSection,
    default_config_path,
    load_config,
    normalize_url,
    safe_url,
)
from l1db.config_model import option_backend, option_fields

REPO = Path(__file__).resolve().parent.parent


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "test.cfg"
    path.write_text(text)
    return path


#: What each variant example config exists to set; every other value must be the default.
VARIANTS: dict[str, dict[str, object]] = {
    "l1db-cassandra-3node.cfg": {"replication_factor": 3, "read_consistency": "QUORUM",
                                 "write_consistency": "QUORUM"},
}


@pytest.mark.parametrize("name", ["l1db-sqlite.cfg", "l1db-pg.cfg", "l1db-mysql.cfg", "l1db-cassandra.cfg",
                                  *VARIANTS])
def test_example_configs_load_with_every_option_documented(name: str) -> None:
    path = REPO / "cfg" / name
    config = load_config(path)
    text = path.read_text()
    for model in L1DB_SECTIONS.values():
        for key, field in option_fields(model).items():
            if option_backend(field) in (None, config.backend):
                assert f"\n{key} =" in text, f"{name} does not show {key}"
    # The comments are the declarations' (python -m dia_sim.cli.readme_tables docs/*.md cfg/*.cfg) and the values
    # the defaults.
    assert config_file_text(text) == text
    for model in L1DB_SECTIONS.values():
        for key, field in option_fields(model).items():
            if key != "url" and option_backend(field) in (None, config.backend):
                expected = VARIANTS.get(name, {}).get(key, field.default)
                assert getattr(config, key, config.cassandra.get(key)) == expected, key
    assert config.read_sources_months == 12
    if config.backend == "cassandra":
        assert config.cassandra["part_pixelization"] == "mq3c"
    else:
        assert config.dia_object_index == "baseline"


def test_packaged_default_is_sqlite() -> None:
    config = load_config(default_config_path())
    assert config.url.startswith("sqlite:///")


def test_minimal_config_gets_defaults(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, "[database]\nurl = sqlite:///x.db\n"))
    defaults = {key: field.default for key, field in option_fields(L1dbSection).items()}
    assert defaults["dia_object_index"] == "baseline" and defaults["read_sources_months"] == 12
    for name, value in defaults.items():
        assert getattr(config, name) == value
    assert config.effective_pixel_level == 20


def test_values_parsed_and_alias(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, """
[database]
url = sqlite:///x.db
[l1db]
dia_object_index = htm20_id_iov
pixelization = healpix
read_sources_months = 6
source_select = by-fov
"""))
    assert config.dia_object_index == "pix_id_iov"
    assert config.pixelization == "healpix"
    assert config.effective_pixel_level == 16
    assert config.read_sources_months == 6
    assert config.source_select == "by-fov"


@pytest.mark.parametrize("options", [
    "dia_object_index = last_object_table\nhistory_partition_days = 30\n",  # no retention: nothing dropped
    "dia_object_index = baseline\nhistory_partition_days = 30\nretention_days = 400\n",  # DiaObject unpartitioned
])
def test_full_objects_where_the_latest_rows_are_kept(tmp_path: Path, options: str) -> None:
    path = _write(tmp_path, f"[database]\nurl = postgresql://u@127.0.0.1/db\n[l1db]\n{options}read_full_objects = 1\n")
    assert load_config(path).read_full_objects == 1


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[l1db]\n", ["missing section [database]"]),
        ("[database]\n", ["[database] url", "missing"]),
        ("[database]\nurl = sqlite://\n[bogus]\nx = 1\n", ["unknown section [bogus]", "[l1db]"]),
        ("[database]\nurl = sqlite://\n[l1db]\ncolour = red\n", ["[l1db]", "unknown key 'colour'", "dia_object_index"]),
        ("[database]\nurl = sqlite://\n[l1db]\ndia_object_index = btree\n",
         ["[l1db] dia_object_index: bad value 'btree'; allowed: baseline | pix_id_iov | last_object_table"]),
        ("[database]\nurl = sqlite://\n[l1db]\nread_sources_months = twelve\n",
         ["read_sources_months", "an integer >= 0"]),
        ("[database]\nurl = sqlite://\n[l1db]\npixel_max_ranges = 0\n", ["pixel_max_ranges", ">= 1"]),
        ("[database]\nurl = sqlite://\n[l1db]\nobject_last_replace = yes\n", ["object_last_replace", "0 | 1"]),
        ("[database]\nurl = not a url\n", ["[database] url: unsupported URL scheme"]),
        ("this is not an ini file\n", ["not a valid INI file"]),
        # Time partitions: PostgreSQL only, and a retention that keeps the history windows.
        ("[database]\nurl = sqlite://\n[l1db]\nhistory_partition_days = 10\n",
         ["[l1db] history_partition_days:", "SQLite has no table partitioning", "postgresql://"]),
        ("[database]\nurl = mysql://u@127.0.0.1/db\n[l1db]\nhistory_partition_days = 10\n",
         ["[l1db] history_partition_days:", "MariaDB/MySQL", "postgresql://"]),
        ("[database]\nurl = cassandra://127.0.0.1/ks\n[l1db]\nhistory_partition_days = 10\n",
         ["[l1db] history_partition_days:", "means nothing for the cassandra backend"]),
        ("[database]\nurl = sqlite://\n[l1db]\nretention_days = 400\n",
         ["[l1db] retention_days:", "SQLite"]),
        ("[database]\nurl = postgresql://u@127.0.0.1/db\n[l1db]\nretention_days = 400\n",
         ["[l1db] retention_days:", "needs history_partition_days > 0"]),
        ("[database]\nurl = postgresql://u@127.0.0.1/db\n[l1db]\nhistory_partition_days = 30\n"
         "retention_days = 200\nread_forced_sources_months = 6\n",
         ["[l1db] retention_days:", "shorter than the history window of 360 days", "allowed: 0 or >= 360"]),
        # The full latest rows are read from DiaObject, whose partitions retention drops.
        ("[database]\nurl = postgresql://u@127.0.0.1/db\n[l1db]\ndia_object_index = last_object_table\n"
         "history_partition_days = 30\nretention_days = 400\nread_full_objects = 1\n",
         ["[l1db] read_full_objects:", "cannot be served with retention_days", "DiaObject"]),
        ("[database]\nurl = postgresql://u@127.0.0.1/db\n[l1db]\nhistory_partition_days = -1\n",
         ["[l1db]", "history_partition_days", "an integer >= 0"]),
    ],
)
def test_errors_name_file_section_key_and_allowed(tmp_path: Path, text: str, expected: list[str]) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert str(path) in message
    for part in expected:
        assert part in message
    assert "\n" not in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.cfg")


def test_pixel_level_range_checked_per_pixelization(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="pixel_level.*htm.*1-24"):
        load_config(_write(tmp_path, "[database]\nurl = sqlite://\n[l1db]\npixel_level = 25\n"))
    config = load_config(_write(tmp_path, "[database]\nurl = sqlite://\n[l1db]\npixelization = healpix\n"
                                          "pixel_level = 25\n"))
    assert config.effective_pixel_level == 25
    with pytest.raises(ConfigError, match="pixel_level.*healpix.*0-29"):
        load_config(_write(tmp_path, "[database]\nurl = sqlite://\n[l1db]\npixelization = healpix\npixel_level = 30\n"))


def test_password_never_shown() -> None:
    url = "postgresql://user:s3cret@db.example/l1"
    assert "s3cret" not in safe_url(url)
    assert "s3cret" not in repr(L1dbConfig(url=url).as_dict())
    assert "s3cret" not in safe_url("::garbage s3cret")


def test_normalize_url_names_installed_drivers() -> None:
    assert normalize_url("postgresql://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert normalize_url("mysql://u@h/db") == "mysql+mysqldb://u@h/db"
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"
    assert normalize_url("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"


def test_replace_validates() -> None:
    config = L1dbConfig(url="sqlite://")
    assert config.replace(dia_object_index="last_object_table").dia_object_index == "last_object_table"
    with pytest.raises(ConfigError):
        config.replace(dia_object_index="nope")


def test_tool_section_is_validated_at_load(tmp_path: Path) -> None:
    # A bad [ap_proto] value fails when the file is loaded, naming file, section and key.
    path = _write(tmp_path, "[database]\nurl = sqlite://\n[ap_proto]\ndetection_fraction = 2\n")
    with pytest.raises(ConfigError) as err:
        load_ap_config(path)
    assert str(err.value) == f"{path}: [ap_proto] detection_fraction: bad value '2'; allowed: a number from 0 to 1"
    path = _write(tmp_path, "[database]\nurl = sqlite://\n[ap_proto]\npointing_area = 0,20,10,30\n")
    with pytest.raises(ConfigError, match=r"\[ap_proto\] pointing_area: .*north of the equator"):
        load_ap_config(path)
    path = _write(tmp_path, "[database]\nurl = sqlite://\n[ap_proto]\nmatch_radius = 2\nscatter_arcsec = 1\n")
    with pytest.raises(ConfigError, match=r"\[ap_proto\] unknown key 'scatter_arcsec'"):
        load_ap_config(path)
    # l1db alone leaves the section to its tool; values are handed over by key.
    path = _write(tmp_path, "[database]\nurl = sqlite://\n[ap_proto]\nmatch_radius = 2\n")
    assert load_config(path).sections == {}
    assert load_ap_config(path).sections["ap_proto"]["match_radius"] == 2.0
    assert set(SECTIONS) <= set(TOOL_SECTIONS)


def test_backend_tag_and_cross_checks_on_direct_construction() -> None:
    with pytest.raises(ConfigError, match="dia_object_index: means nothing for the cassandra backend"):
        L1dbConfig(url="cassandra://127.0.0.1/ks").replace(dia_object_index="baseline")
    assert L1dbConfig(url="cassandra://127.0.0.1/ks").cassandra["part_pixelization"] == "mq3c"
    with pytest.raises(ConfigError, match="pixel_level: bad value 25 with pixelization htm; allowed: 1-24"):
        L1dbConfig(url="sqlite://").replace(pixel_level=25)


def test_divide_is_an_integer_or_camera(tmp_path: Path) -> None:
    """``divide`` takes N (1 to 64) or camera, in the file as on the command line; anything else names the values."""
    for text, value in (("camera", "camera"), (" Camera ", "camera"), ("1", 1), ("64", 64)):
        config = load_ap_config(_write(tmp_path, f"[database]\nurl = sqlite:///x.db\n[ap_proto]\ndivide = {text}\n"))
        assert config.sections["ap_proto"]["divide"] == value
    for text in ("0", "65", "2.5", "cam", "3x3"):
        with pytest.raises(ConfigError) as info:
            load_ap_config(_write(tmp_path, f"[database]\nurl = sqlite:///x.db\n[ap_proto]\ndivide = {text}\n"))
        assert "[ap_proto]" in str(info.value) and "an integer from 1 to 64, or camera" in str(info.value)
