"""Servers shared by the HTTP tests: `aigq serve bento|kserve` on a copy of the served tiny world,
started once per test session (start-up costs tens of seconds) and stopped at the end."""

import shutil

import pytest

from servers.launch import spawn, stop_spawned

from tests.integration.servers import Server, free_port


@pytest.fixture(scope="session")
def server_home(served_home, tmp_path_factory):
    dst = tmp_path_factory.mktemp("servers") / "home"
    shutil.copytree(served_home["home"], dst)
    return dst


def serve(name: str, home):
    port = free_port()
    proc = spawn(name, port, home)
    yield Server(name, port, proc)
    stop_spawned(proc)


@pytest.fixture(scope="session")
def kserve(server_home):
    """KServe: the HintQ transformer on `port`, its CTR/Direct predictor on port + 1."""
    yield from serve("kserve", server_home)


@pytest.fixture(scope="session")
def bento(server_home):
    yield from serve("bento", server_home)
