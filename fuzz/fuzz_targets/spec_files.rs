//! Service spec files as `hoist service apply -f` reads them (TOML, YAML or JSON: the first byte
//! picks), then what the controller checks them with, then every stored format that can carry a
//! valid spec: what is written must read back as the same spec (compared by its bytes, so that
//! a NaN compares equal to itself).

#![no_main]

#[path = "../../cli/src/spec_file.rs"]
#[allow(dead_code)]
mod spec_file;

use hoist_proto::format::{Codec, CURRENT, OLDEST};
use libfuzzer_sys::fuzz_target;
use spec_file::Format;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let format = match which % 3 {
        0 => Format::Toml,
        1 => Format::Yaml,
        _ => Format::Json,
    };
    let Ok(specs) = spec_file::parse(text, format) else {
        return;
    };
    for spec in specs {
        let _ = hoist_proto::limits::check_service(&spec);
        if !spec.validate().is_empty() {
            continue;
        }
        for f in spec.format().max(OLDEST)..=CURRENT {
            let bytes = spec.encode(f).unwrap_or_else(|e| {
                panic!(
                    "a valid spec of format {} in format {f}: {e}",
                    spec.format()
                )
            });
            let back = hoist_proto::service::ServiceSpec::decode(&bytes, f)
                .unwrap_or_else(|e| panic!("format {f} does not read what it wrote: {e}"));
            let again = back.encode(f).expect("re-encode");
            assert_eq!(again, bytes, "format {f} reads a spec back differently");
        }
    }
});
