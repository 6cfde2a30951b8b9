"""The intent cache: a write moves it along without reading the fleet again, another
process's write makes it reload, and a write that fails after the model changed drops it."""

from __future__ import annotations

import pytest

from silonet.errors import Conflict
from silonet.runtime import Runtime
from silonet.service import Manager
from silonet.service import schemas as S
from silonet.store.db import Database


def attach(m: Manager, network: str, group: str, vlan: int) -> S.AttachmentOut:
    return m.attach(network, S.validate(S.AttachmentIn, {"interface_group": group, "vlan": vlan}))


def some_attachment(m: Manager) -> tuple[str, str]:
    """A network and a group of the example topology with a free VLAN 3999."""
    net = m.list_networks()[0]
    return net.name, m.list_groups()[0].name


def test_writes_move_the_cache_without_reloading(seeded: Manager) -> None:
    cache = seeded.cache
    seeded.list_networks()
    loads = cache.loads
    net, group = some_attachment(seeded)
    out = attach(seeded, net, group, 3999)
    assert cache.loads == loads and cache.generation == out.generation
    assert seeded.get_attachment(net, group, 3999).vlan == 3999
    assert cache.loads == loads  # the read used the cache too


def test_rejected_request_keeps_the_cache(seeded: Manager) -> None:
    cache = seeded.cache
    net, group = some_attachment(seeded)
    attach(seeded, net, group, 3999)
    loads, generation = cache.loads, cache.generation
    with pytest.raises(Conflict):
        attach(seeded, net, group, 3999)  # the model refuses before it changes anything
    assert (cache.loads, cache.generation) == (loads, generation)
    assert cache.inventory is not None and (group, 3999) in cache.inventory.attachments


def test_failure_after_the_model_changed_drops_the_cache(seeded: Manager, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = seeded.cache
    net, group = some_attachment(seeded)
    seeded.list_networks()

    def broken(*_a: object, **_k: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr("silonet.store.repo.Repository.add_attachment", broken)
    with pytest.raises(RuntimeError):
        attach(seeded, net, group, 3999)
    assert cache.inventory is None  # the model had the attachment; the database did not
    monkeypatch.undo()
    assert all(a.vlan != 3999 for a in seeded.get_network(net).attachments)


def test_another_process_writing_makes_it_reload(seeded: Manager, db: Database) -> None:
    cache = seeded.cache
    seeded.list_networks()
    loads = cache.loads
    other = Manager(Runtime(Database(db.url)), seeded.settings)  # its own engine and cache: another process
    net, group = some_attachment(other)
    attach(other, net, group, 3999)
    assert any(a.vlan == 3999 for a in seeded.get_network(net).attachments)
    assert cache.loads == loads + 1
    other.db.dispose()
