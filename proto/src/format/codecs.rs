//! [`Codec`](super::Codec) for every type that is a whole message or record on its own: the agent
//! protocol's bodies, the Raft payload, and the types the golden files sample.

use super::{v0, v1};
use crate::codec_via;
use crate::{cluster as c, node as n, raft as r, service as s};

codec_via!(
    s::ServiceSpec,
    "service-spec",
    v0::ServiceSpec,
    v1::ServiceSpec
);
codec_via!(c::Node, "node", v0::Node, v1::Node);
codec_via!(c::Task, "task", v0::Task, v1::Task);
codec_via!(c::Rollout, "rollout", v0::Rollout, v1::Rollout);
codec_via!(r::Request, "request", v0::Request, v1::Request);
codec_via!(r::Response, "response", v0::Response, v1::Response);
codec_via!(
    r::StallNotice,
    "stall-notice",
    v0::StallNotice,
    v1::StallNotice
);
codec_via!(
    n::RegisterRequest,
    "register-request",
    v0::RegisterRequest,
    v1::RegisterRequest
);
codec_via!(
    n::RegisterResponse,
    "register-response",
    v0::RegisterResponse,
    v1::RegisterResponse
);
codec_via!(n::Heartbeat, "heartbeat", v0::Heartbeat, v1::Heartbeat);
codec_via!(
    n::HeartbeatAck,
    "heartbeat-ack",
    v0::HeartbeatAck,
    v1::HeartbeatAck
);
codec_via!(
    n::Assignments,
    "assignments",
    v0::Assignments,
    v1::Assignments
);
codec_via!(
    n::StatusReport,
    "status-report",
    v0::StatusReport,
    v1::StatusReport
);
codec_via!(n::StatusAck, "status-ack", v0::StatusAck, v1::StatusAck);

/// A message that exists from format `$since` on (no format-0 twin): protobuf only.
macro_rules! codec_since {
    ($ty:ty, $name:literal, $v1:ty, $since:literal) => {
        impl crate::format::Codec for $ty {
            const NAME: &'static str = $name;
            fn encode(&self, format: u32) -> Result<Vec<u8>, crate::format::Unrepresentable> {
                if format < $since {
                    return Err(crate::format::Unrepresentable::new(
                        stringify!($ty),
                        $since,
                        format,
                    ));
                }
                let v: $v1 = crate::format::mirror::ToV1::to_v1(self);
                Ok(prost::Message::encode_to_vec(&v))
            }
            fn decode(bytes: &[u8], format: u32) -> Result<Self, crate::format::DecodeError> {
                let err =
                    |e: &dyn std::fmt::Display| crate::format::DecodeError::new($name, format, e);
                if !($since..=crate::format::CURRENT).contains(&format) {
                    return Err(err(&format!(
                        "{} is sent in formats {}..={}",
                        $name,
                        $since,
                        crate::format::CURRENT
                    )));
                }
                let v = <$v1 as prost::Message>::decode(bytes).map_err(|e| err(&e))?;
                crate::format::mirror::FromV1::from_v1(v).map_err(|e| err(&e))
            }
        }
    };
}

codec_since!(
    n::ServiceEndpoints,
    "service-endpoints",
    v1::ServiceEndpoints,
    2
);
codec_since!(n::OverlayReport, "overlay-report", v1::OverlayReport, 2);
codec_since!(n::VolumeReport, "volume-report", v1::VolumeReport, 2);
codec_since!(
    crate::session::SessionRequests,
    "session-requests",
    v1::SessionRequests,
    2
);
codec_since!(
    crate::session::SessionFrame,
    "session-frame",
    v1::SessionFrame,
    2
);
codec_since!(crate::files::TaskFiles, "task-files", v1::TaskFiles, 2);
codec_since!(
    n::CertificateRequest,
    "certificate-request",
    v1::CertificateRequest,
    2
);
codec_since!(
    n::CertificateResponse,
    "certificate-response",
    v1::CertificateResponse,
    2
);
