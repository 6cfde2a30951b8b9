"""The ``ovsdb`` driver: the hardware_vtep schema over OVSDB, with Open vSwitch's own IDL.

One persistent IDL per gateway, owned by one thread (``connection``). All operations of a pass
go into one transaction, one small handler per operation (``handlers``); columns whose contents
decided the plan are ``verify()``-ed, so a concurrent writer makes the commit TRY_AGAIN and the
reconciler re-reads and re-plans instead of overwriting what it did not see. Reads interpret
the replica row by row as it changes (``replica``); ``driver`` ties them together.

Ownership: a Logical_Switch is silonet's when ``other_config:silonet_managed=true``; its
bindings, flood list and remote MACs are silonet's too. Everything else is foreign: read,
reported, never changed.
"""

from silonet.drivers.ovsdb.driver import OvsdbDriver
from silonet.drivers.ovsdb.opening import configure_ssl, fetch_schema

DRIVER = OvsdbDriver

__all__ = ["DRIVER", "OvsdbDriver", "configure_ssl", "fetch_schema"]
