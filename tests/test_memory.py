"""snnzoo.memory: the commands' malloc setting, and how it is turned off."""

import ctypes
import importlib

import pytest

from snnzoo import memory


def test_keep_freed_memory_sets_glibc_malloc_and_can_be_turned_off(monkeypatch):
    calls = []

    class FakeLibc:
        gnu_get_libc_version = object()

        def mallopt(self, parameter, value):
            calls.append((parameter, value))
            return 1

    monkeypatch.setattr(ctypes, "CDLL", lambda name: FakeLibc())
    monkeypatch.delenv(memory.ENV, raising=False)
    assert memory.keep_freed_memory()
    assert calls == [(-4, 0), (-1, 1 << 30)]  # M_MMAP_MAX 0, M_TRIM_THRESHOLD 1 GiB
    calls.clear()
    monkeypatch.setenv(memory.ENV, "0")
    assert not memory.keep_freed_memory() and calls == []


def test_keep_freed_memory_does_nothing_without_glibc(monkeypatch):
    class OtherLibc:  # musl and others: no gnu_get_libc_version
        def mallopt(self, parameter, value):
            raise AssertionError("mallopt called on a libc that is not glibc")

    monkeypatch.setattr(ctypes, "CDLL", lambda name: OtherLibc())
    monkeypatch.delenv(memory.ENV, raising=False)
    assert not memory.keep_freed_memory()


COMMANDS = {  # module, argv, the function the command calls after its setting, and where
    "search": ("snnzoo.search.__main__", ["--num-search", "1"], "snnzoo.search.run", "run_search"),
    "train": ("snnzoo.train", ["snasnet_fmnist"], "snnzoo.train", "train"),
    "validate": ("snnzoo.validate", ["snasnet_fmnist", "--untrained"], "snnzoo.validate",
                 "dataset_info"),
}


def _stop(*args, **kwargs):
    raise RuntimeError("stopped after the setting")


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_commands_keep_freed_memory(command, monkeypatch):
    name, argv, next_module, next_function = COMMANDS[command]
    module = importlib.import_module(name)
    called = []

    def record():
        called.append(1)
        return True
    monkeypatch.setattr(memory, "keep_freed_memory", record)
    if hasattr(module, "keep_freed_memory"):  # imported at module level
        monkeypatch.setattr(module, "keep_freed_memory", record)
    monkeypatch.setattr(importlib.import_module(next_module), next_function, _stop)
    with pytest.raises(RuntimeError, match="stopped after the setting"):
        module.main(argv)
    assert called == [1]
