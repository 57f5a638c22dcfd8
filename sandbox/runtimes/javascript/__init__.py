"""QuickJS-NG in its WASI reactor build (shipped by ``qjs-wasi-reactor.wasm``)."""
