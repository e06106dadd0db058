"""Every form of password a libpq connection string accepts is masked by its shape, and the
configuration's passwords are registered decoded, so they are masked wherever they turn up."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

from commands.config import load_settings
from commands.redact import mask_url, redact

SECRET = "s3cret-Pa55"
LIBPQ_URL_FORMS = [
    f"postgresql://deploy:{SECRET}@db.internal:5433/togather",
    f"postgresql://deploy@db.internal:5433/togather?password={SECRET}",
    f"postgresql://deploy@db.internal:5433/togather?sslmode=prefer&pass%77ord={SECRET}&connect_timeout=5",
    f"postgresql://deploy@db.internal:5433/togather?%70%61%73%73%77%6F%72%64={SECRET}",
    f"postgres://deploy@db.internal:5433/togather?password={SECRET.replace('-', '%2D')}",
    f"postgresql://deploy:{SECRET.replace('P', '%50')}@db.internal:5433/togather",
    f"postgresql://deploy:{SECRET}?x@db.internal:5433/togather",
]


@pytest.mark.parametrize("url", LIBPQ_URL_FORMS)
def test_a_password_in_any_form_libpq_reads_from_a_url_is_masked(url):
    password = conninfo_to_dict(url)["password"]  # libpq's own reading: the form is a real one
    assert password in (SECRET, SECRET + "?x")

    masked = mask_url(url)
    assert "Pa55" not in masked and "%50a55" not in masked and "****" in masked
    assert "db.internal:5433/togather" in masked  # the rest stays readable for a diagnosis
    assert "Pa55" not in redact(f"Cannot connect to {url}: connection refused")


def test_an_ssl_key_password_is_masked_as_well():
    url = f"postgresql://deploy@db/app?sslkey=/k.pem&sslpassword={SECRET}"
    assert conninfo_to_dict(url)["sslpassword"] == SECRET
    assert mask_url(url) == "postgresql://deploy@db/app?sslkey=/k.pem&sslpassword=****"


def test_keyword_value_connection_strings_are_masked_quoted_or_not():
    text = rf"host=db password='it\'s {SECRET}' user=deploy sslpassword={SECRET} dbname=app"
    assert conninfo_to_dict(text)["password"] == f"it's {SECRET}"
    assert redact(text) == "host=db password=**** user=deploy sslpassword=**** dbname=app"


def test_other_query_parameters_are_left_alone():
    url = "postgresql://deploy@db/app?sslmode=require&application_name=dbops&passfile=/etc/pgpass"
    assert mask_url(url) == url


def test_the_decoded_password_of_a_query_parameter_is_registered_at_load(tmp_path: Path):
    plain = f"pw&{uuid.uuid4().hex[:12]}"
    encoded = plain.replace("&", "%26")
    (tmp_path / "dbops.toml").write_text(
        '[environments.production]\ndatabase_url = "${PROD}"\nmigrations_dir = "m"\nsnapshot_dir = "s"\n'
        'require_approval = []\n')
    url = f"postgresql://deploy@db/app?sslmode=prefer&pass%77ord={encoded}"
    assert conninfo_to_dict(url)["password"] == plain
    assert plain[3:] in redact(f"the server said: {plain}")

    load_settings(tmp_path / "dbops.toml", environ={"PROD": url})

    assert plain[3:] not in redact(f"the server said: {plain}")  # decoded, as an error would quote it
    assert encoded[5:] not in redact(f"configured as {encoded}")
