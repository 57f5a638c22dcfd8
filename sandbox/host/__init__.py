"""The wasmtime side: engine, compiled-module cache, WASI wiring, limits and guest threads."""
