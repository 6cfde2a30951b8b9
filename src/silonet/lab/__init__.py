"""The lab: silos, ToR switches, hosts and emulated VXLAN gateways in network namespaces.

``Lab(prefix, index, base_dir).up(paper_topology())`` builds the paper's prototype; the
reconciler, the demo and the end-to-end tests drive real ``ovs-vtep`` gateways through it.
"""

from silonet.lab.errors import LabError
from silonet.lab.lab import Lab
from silonet.lab.topology import (
    GatewaySpec,
    Group,
    Host,
    LabTopology,
    PortRef,
    Silo,
    Tor,
    load_topology,
    paper_topology,
)

__all__ = [
    "GatewaySpec",
    "Group",
    "Host",
    "Lab",
    "LabError",
    "LabTopology",
    "PortRef",
    "Silo",
    "Tor",
    "load_topology",
    "paper_topology",
]
