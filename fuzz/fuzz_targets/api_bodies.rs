//! JSON request bodies of both APIs as `hoist_common::json_body` reads them (the first byte picks
//! the body's type), then what each side checks before acting on one: a spec's validation and
//! sizes, a create request's sizes and the agent's preparation of its process (Docker's
//! defaulting rules and the environment merge). Also the Content-Type rule on any text.

#![no_main]

use hoist_common::json_body;
use hoist_proto::{cluster, image, limits, raft, service, session};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;

fn decode<T: DeserializeOwned>(body: &[u8]) -> Option<T> {
    json_body::decode(Some(b"application/json; charset=utf-8"), body, "body").ok()
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    if let Ok(text) = std::str::from_utf8(body) {
        let json = json_body::is_json_media_type(text);
        assert_eq!(
            json_body::check_content_type(Some(body), false, "x").is_ok(),
            json
        );
    }
    match which % 12 {
        0 => {
            if let Some(spec) = decode::<service::ServiceSpec>(body) {
                let _ = spec.validate();
                let _ = limits::check_service(&spec);
                let _ = spec.format();
                let _ = spec.pinned_image();
            }
        }
        1 => {
            if let Some(stack) = decode::<raft::StackDeploy>(body) {
                for spec in &stack.services {
                    let _ = spec.validate();
                    let _ = limits::check_service(spec);
                }
            }
        }
        2 => {
            if let Some(req) = decode::<hoist_proto::CreateContainer>(body) {
                if limits::check_create(&req).is_ok() {
                    let image = hoist_proto::ImageConfig {
                        env: vec!["PATH=/bin".into(), "A=1".into()],
                        cmd: Some(vec!["sh".into()]),
                        ..Default::default()
                    };
                    if let Ok(p) = hoist_agent::containers::prepare::process(&req, &image, "host") {
                        let _ = limits::check_process(&p.args, &p.env);
                    }
                }
            }
        }
        3 => {
            if let Some(req) = decode::<hoist_proto::ExecRequest>(body) {
                let _ = limits::check_exec(&req);
            }
        }
        4 => drop(decode::<cluster::ScaleRequest>(body)),
        5 => drop(decode::<cluster::RollbackRequest>(body)),
        6 => drop(decode::<cluster::LabelRequest>(body)),
        7 => drop(decode::<cluster::JoinRequest>(body)),
        8 => drop(decode::<session::ExecBody>(body)),
        9 => drop(decode::<hoist_proto::BuildRequest>(body)),
        10 => drop(decode::<image::PullRequest>(body)),
        _ => drop(decode::<hoist_proto::CommitRequest>(body)),
    }
});
