//! Layer tars as a pull, a load, an import or a build context applies them: decompression by the
//! stream's magic (gzip, zstd or plain), then every entry (paths, `..`, links, whiteouts, opaque
//! directories, devices, modes, times) onto a fresh directory. Nothing may panic, and nothing
//! may land outside the layer's root: the root sits alone in a scratch directory, which must
//! hold nothing else afterwards.

#![no_main]

use hoist_agent::image::unpack::{self, LayerLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let jail = tempfile::Builder::new()
        .prefix("hoist-fuzz-layer-")
        .tempdir()
        .expect("scratch dir");
    let root = jail.path().join("root");
    std::fs::create_dir(&root).expect("layer root");
    let limits = LayerLimits {
        max_bytes: 8 << 20,
        max_entries: 10_000,
    };
    if let Ok(stream) = unpack::decompress(data) {
        let _ = unpack::apply_layer(&root, stream, limits);
    }
    let outside: Vec<_> = std::fs::read_dir(jail.path())
        .expect("read scratch dir")
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != "root")
        .collect();
    assert!(
        outside.is_empty(),
        "a layer wrote outside its root: {outside:?}"
    );
});
