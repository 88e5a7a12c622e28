//! Writes that reach a member which is not the leader go to the leader grouped: every command
//! waiting for the same leader travels in one `POST /raft/propose` (postcard `Vec<Command>`), and
//! the leader answers one outcome per command, in order (postcard `Vec<Outcome>`).
//!
//! Forwarding each API request on its own costed the leader a full HTTP request per write; as a
//! group it is one request per batch, and the leader's proposer puts the whole group into one log
//! entry. The leader never forwards a proposal further: a member that lost leadership answers
//! "not the leader", and the API layer's request forwarding takes over from there.

use super::network::post_postcard;
use super::node::ConsensusError;
use hoist_proto::raft::{Command, Response};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Semaphore};

/// What the leader answers for one forwarded command.
pub type Outcome = Result<Response, ConsensusError>;

/// Most commands in one request.
const MAX_BATCH: usize = 512;
/// Requests per member waiting for an answer at once: one commits while the next waits in the
/// leader's queue for the leader's next entry.
const IN_FLIGHT: usize = 2;

type Item = (String, Command, oneshot::Sender<Outcome>);

/// The queue into the forwarding task.
#[derive(Debug, Clone)]
pub struct Forwarder {
    tx: mpsc::UnboundedSender<Item>,
}

impl Forwarder {
    /// Starts the forwarding task; a group not answered within `timeout` gets
    /// [`ConsensusError::Unknown`].
    pub fn start(timeout: Duration) -> Forwarder {
        hoist_common::init_tls();
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_millis(500))
            .tcp_nodelay(true)
            .build()
            .expect("http client builds");
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(http, rx, timeout));
        Forwarder { tx }
    }

    /// Sends `command` to the leader at `leader` (in some group) and waits for its outcome.
    pub async fn propose(&self, leader: String, command: Command) -> Outcome {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((leader, command, reply))
            .map_err(|_| ConsensusError::Fatal("the forwarder stopped".into()))?;
        answer
            .await
            .map_err(|_| ConsensusError::Fatal("the forwarder stopped".into()))?
    }
}

async fn run(http: reqwest::Client, mut rx: mpsc::UnboundedReceiver<Item>, timeout: Duration) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut next: Option<Item> = None;
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let first = match next.take() {
            Some(item) => item,
            None => match rx.recv().await {
                Some(item) => item,
                None => return,
            },
        };
        let leader = first.0.clone();
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(item) if item.0 == leader => batch.push(item),
                Ok(item) => {
                    next = Some(item);
                    break;
                }
                Err(_) => break,
            }
        }
        let http = http.clone();
        tokio::spawn(async move {
            send(&http, &leader, batch, timeout).await;
            drop(permit);
        });
    }
}

async fn send(http: &reqwest::Client, leader: &str, batch: Vec<Item>, timeout: Duration) {
    let (commands, replies): (Vec<Command>, Vec<oneshot::Sender<Outcome>>) =
        batch.into_iter().map(|(_, c, r)| (c, r)).unzip();
    let outcomes = call(http, leader, &commands, timeout).await;
    match outcomes {
        Ok(outcomes) if outcomes.len() == replies.len() => {
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(outcome);
            }
        }
        Ok(outcomes) => {
            let e = ConsensusError::Unknown(format!(
                "the leader at {leader} answered {} outcomes for {} writes",
                outcomes.len(),
                replies.len()
            ));
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
        Err(e) => {
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}

async fn call(
    http: &reqwest::Client,
    leader: &str,
    commands: &[Command],
    timeout: Duration,
) -> Result<Vec<Outcome>, ConsensusError> {
    let body = postcard::to_stdvec(commands)
        .map_err(|e| ConsensusError::Fatal(format!("encoding forwarded writes: {e}")))?;
    let unknown = |what: String| {
        ConsensusError::Unknown(format!(
            "the leader at {leader} did not answer ({what}); a write may or may not have been applied"
        ))
    };
    let url = format!("http://{leader}/raft/propose");
    let (status, bytes) = post_postcard(http, url, timeout, body).await.map_err(|e| {
        if e.is_connect() {
            ConsensusError::NoQuorum(format!(
                "the leader at {leader} could not be reached ({e}); nothing was proposed, retry"
            ))
        } else {
            unknown(e.to_string())
        }
    })?;
    if !status.is_success() {
        return Err(unknown(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&bytes)
        )));
    }
    postcard::from_bytes(&bytes).map_err(|e| unknown(format!("undecodable answer: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The answer body is a wire format between members: pinned.
    #[test]
    fn outcomes_golden_bytes_and_round_trip() {
        let outcomes: Vec<Outcome> = vec![
            Ok(Response::Ok),
            Err(ConsensusError::NotLeader {
                leader: Some((2, "h:1".into())),
            }),
            Err(ConsensusError::NotLeader { leader: None }),
            Err(ConsensusError::NoQuorum("q".into())),
            Err(ConsensusError::Unknown("u".into())),
            Err(ConsensusError::Rejected("r".into())),
            Err(ConsensusError::Fatal("f".into())),
        ];
        let bytes = postcard::to_stdvec(&outcomes).unwrap();
        assert_eq!(
            bytes,
            [
                7, 0, 5, 1, 0, 1, 2, 3, 104, 58, 49, 1, 0, 0, 1, 1, 1, 113, 1, 2, 1, 117, 1, 3, 1,
                114, 1, 4, 1, 102
            ]
        );
        let back: Vec<Outcome> = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(format!("{back:?}"), format!("{outcomes:?}"));
    }
}
