"""Model fixtures live in tests/conftest.py (direct_home, served_home): server tests share them."""
