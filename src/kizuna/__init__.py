"""kizuna: open software for the fields in which ISRO and JAXA work together."""

__version__ = "0.1.0"
