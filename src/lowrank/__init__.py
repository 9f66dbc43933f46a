"""Reproduction study of low-rank neural-network compression.

Layout follows the data flow: data -> models -> methods -> train -> sweep/measure -> report.
"""

__version__ = "0.1.0"
