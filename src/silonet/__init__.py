"""silonet: a virtual network manager for data centers split into silos."""

__version__ = "0.1.0"
