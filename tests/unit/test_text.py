import pytest

from core.text import normalize_query


@pytest.mark.parametrize(
    "raw,norm",
    [
        ("  Red  DRESS ", "red dress"),
        ("red\tdress\n", "red dress"),
        ("ｒｅｄ dress", "red dress"),  # full-width letters fold
        ("red\x00\x07 dress", "red dress"),  # control characters dropped
        ("", ""),
        ('48" sliding barn door', '48" sliding barn door'),
    ],
)
def test_normalize_query(raw, norm):
    assert normalize_query(raw) == norm
