"""One check of a time zone name (api.TimeZoneName): the CDS service's
configuration (serve --config) and the clinic's (calfrehab.toml) refuse the
same mistake with the same words, naming the key and the value, and take
the same names."""

from __future__ import annotations

from pathlib import Path

import pytest

from calfrehab.engine import api
from calfrehab.server.config import load_config as load_server_config

EXPECTED = ("not a time zone name in the IANA database; expected e.g. Europe/London or "
            "Australia/Sydney (got 'Mars/Olympus')")


def _clinic_error(tmp_path: Path, zone: str) -> str:
    (tmp_path / "calfrehab.toml").write_text(f'[clinic]\ntime_zone = "{zone}"\n',
                                              encoding="utf-8")
    with pytest.raises(api.ClinicConfigError) as caught:
        api.load_config(tmp_path)
    return str(caught.value)


def _server_error(tmp_path: Path, zone: str) -> str:
    config = tmp_path / "serve.toml"
    config.write_text(f'timezone = "{zone}"\n', encoding="utf-8")
    with pytest.raises(api.CalfrehabError) as caught:
        load_server_config(config)
    return str(caught.value)


def test_both_configurations_refuse_an_unknown_zone_in_the_same_words(tmp_path: Path) -> None:
    # Before: the service said "'Mars/Olympus' is not an IANA time zone (e.g.
    # Europe/Amsterdam)" after pydantic's "Value error, ".
    assert _clinic_error(tmp_path, "Mars/Olympus").endswith(f"clinic.time_zone: {EXPECTED}")
    assert _server_error(tmp_path, "Mars/Olympus").endswith(f"timezone: {EXPECTED}")


def test_a_bad_number_in_the_service_configuration_names_the_value(tmp_path: Path) -> None:
    config = tmp_path / "serve.toml"
    config.write_text("port = 70000\n", encoding="utf-8")
    with pytest.raises(api.CalfrehabError) as caught:
        load_server_config(config)
    assert str(caught.value).endswith("port: Input should be less than or equal to 65535 "
                                      "(got 70000)")


def test_both_configurations_name_an_unknown_key_and_the_keys_expected(
        tmp_path: Path) -> None:
    # One wording (api.config_problems); before, the service said pydantic's
    # "Extra inputs are not permitted (got 1)" and named no key it takes.
    (tmp_path / "calfrehab.toml").write_text("[clinic]\nbogus = 1\n", encoding="utf-8")
    with pytest.raises(api.ClinicConfigError) as clinic:
        api.load_config(tmp_path)
    assert str(clinic.value).endswith(
        "clinic.bogus: unknown key (expected one of name, phone, clinician, time_zone)")
    config = tmp_path / "serve.toml"
    config.write_text("bogus = 1\n[[issuers]]\niss = 'x'\nalgorithm = 'ES384'\n",
                      encoding="utf-8")
    with pytest.raises(api.CalfrehabError) as server:
        load_server_config(config)
    said = str(server.value)
    assert "issuers.0.algorithm: unknown key (expected one of iss, jwks_file, jwks, jku, " \
           "fhir_servers, algorithms)" in said
    assert "bogus: unknown key (expected one of host, port, " in said
    assert "base_dir" not in said  # the program's, not a key of the file


def test_an_unknown_key_in_an_optional_section_names_the_keys_expected(
        tmp_path: Path) -> None:
    # [checkpoint] is optional (CheckpointSchedule | None): the keys it takes
    # are offered as in any other table, where the message had named none.
    config = tmp_path / "serve.toml"
    config.write_text("[checkpoint]\nkey = 'k'\nlog = 'l'\nevry_s = 60\n", encoding="utf-8")
    with pytest.raises(api.CalfrehabError) as caught:
        load_server_config(config)
    assert str(caught.value).endswith(
        "checkpoint.evry_s: unknown key (expected one of key, log, every_s)")


@pytest.mark.parametrize("zone", ["Europe/Amsterdam", "Australia/Sydney", "UTC"])
def test_both_take_an_iana_name(tmp_path: Path, zone: str) -> None:
    (tmp_path / "calfrehab.toml").write_text(f'[clinic]\ntime_zone = "{zone}"\n',
                                              encoding="utf-8")
    assert api.load_config(tmp_path).config.clinic.time_zone == zone
    config = tmp_path / "serve.toml"
    config.write_text(f'timezone = "{zone}"\n', encoding="utf-8")
    assert str(load_server_config(config).clinic_zone()) == zone


def test_a_path_like_name_is_refused_not_read(tmp_path: Path) -> None:
    # ZoneInfo refuses a name that reaches outside its database with a
    # ValueError, not ZoneInfoNotFoundError: both are the same message.
    assert "not a time zone name in the IANA database" in _server_error(tmp_path, "../../etc/x")
    assert "not a time zone name in the IANA database" in _clinic_error(tmp_path, "../../etc/x")
