"""The ``ssh`` driver: vendor CLIs over one persistent SSH session per gateway.

A vendor is a *dialect* (``dialects/<name>/``): Jinja2 templates per operation, the show
commands to read back, a parser, failure strings and prompts. Nothing else knows vendors.
"""
