//! The Dockerfile parser (`hoist build`'s first step on a client's file), then the builder's
//! rules for config-only instructions (ENV, LABEL, EXPOSE, ... with `$VAR` substitution) on
//! every stage it parsed. Nothing may panic, loop or run away with memory.

#![no_main]

use hoist_agent::image::build::{dockerfile, metadata};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if text.len() > dockerfile::MAX_DOCKERFILE_BYTES {
        return;
    }
    let Ok(df) = dockerfile::parse(text) else {
        return;
    };
    let lookup = |name: &str| (name == "A").then(|| "a b".to_string());
    for stage in &df.stages {
        let _ = df.stage(&stage.base);
        let mut config = hoist_proto::ImageConfig::default();
        let mut cmd_set = false;
        for inst in stage
            .instructions
            .iter()
            .filter(|i| metadata::is_metadata(i.cmd))
        {
            let _ = metadata::apply(inst, &mut config, &lookup, df.escape, &mut cmd_set);
        }
    }
});
