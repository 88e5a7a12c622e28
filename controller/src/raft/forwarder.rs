//! Writes that reach a member which is not the leader go to the leader grouped: every command
//! waiting for the same leader travels in one proposal (on the member link, or else as a `POST
//! /raft/propose`), and the leader answers one outcome per command, in order (see
//! [`super::wire`] for the bodies in each format).
//!
//! Forwarding each API request on its own costed the leader a full HTTP request per write; as a
//! group it is one request per batch, and the leader's proposer puts the whole group into one log
//! entry. The leader never forwards a proposal further: a member that lost leadership answers
//! "not the leader", and the API layer's request forwarding takes over from there.

use super::link::Links;
use super::network::post;
use super::node::ConsensusError;
use super::peers::{self, Peers};
use super::wire::{self, Outcome};
use hoist_proto::peer_link::Kind;
use hoist_proto::raft::Command;
use hoist_transport::client::PeerClients;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Most commands in one request.
const MAX_BATCH: usize = 512;
/// Requests per member waiting for an answer at once: one commits while the next waits in the
/// leader's queue for the leader's next entry.
const IN_FLIGHT: usize = 2;

/// Leader address, the oldest format the commands may travel in, the command, the reply.
type Item = (String, u32, Command, oneshot::Sender<Outcome>);

/// The queue into the forwarding task.
#[derive(Debug, Clone)]
pub struct Forwarder {
    tx: mpsc::UnboundedSender<Item>,
}

impl Forwarder {
    /// Starts the forwarding task; a group not answered within `timeout` gets
    /// [`ConsensusError::Unknown`].
    pub fn start(
        timeout: Duration,
        peers: Arc<Peers>,
        clients: Arc<PeerClients>,
        links: Arc<Links>,
    ) -> Forwarder {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(clients, links, rx, timeout, peers));
        Forwarder { tx }
    }

    /// Sends `command` to the leader at `leader` (in some group) and waits for its outcome.
    /// `format` is one the leader is known to read (the cluster's, or what the leader said of
    /// itself): the group travels in the newest of it and what the leader's address said.
    pub async fn propose(&self, leader: String, format: u32, command: Command) -> Outcome {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((leader, format, command, reply))
            .map_err(|_| ConsensusError::Fatal("the forwarder stopped".into()))?;
        // Once queued, the command may have been sent: a lost answer is an unknown outcome.
        answer.await.map_err(|_| {
            ConsensusError::Unknown(
                "the forwarder stopped; a write may or may not have been applied".into(),
            )
        })?
    }
}

async fn run(
    http: Arc<PeerClients>,
    links: Arc<Links>,
    mut rx: mpsc::UnboundedReceiver<Item>,
    timeout: Duration,
    peers: Arc<Peers>,
) {
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
        let links = links.clone();
        let format = batch
            .iter()
            .map(|i| i.1)
            .max()
            .unwrap_or(0)
            .max(peers.format_at(&leader));
        let peers = peers.clone();
        tokio::spawn(async move {
            send(&http, &links, &peers, &leader, format, batch, timeout).await;
            drop(permit);
        });
    }
}

async fn send(
    http: &PeerClients,
    links: &Links,
    peers: &Peers,
    leader: &str,
    format: u32,
    batch: Vec<Item>,
    timeout: Duration,
) {
    let (commands, replies): (Vec<Command>, Vec<oneshot::Sender<Outcome>>) =
        batch.into_iter().map(|(_, _, c, r)| (c, r)).unzip();
    let outcomes = call(http, links, peers, leader, format, &commands, timeout).await;
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
    http: &PeerClients,
    links: &Links,
    peers: &Peers,
    leader: &str,
    format: u32,
    commands: &[Command],
    timeout: Duration,
) -> Result<Vec<Outcome>, ConsensusError> {
    let body = wire::encode_proposal(commands, format).map_err(|e| {
        ConsensusError::NeedsUpgrade(format!(
            "the leader at {leader} reads format {format}, and {} needs format {}: upgrade it first",
            e.what, e.needs
        ))
    })?;
    let unknown = |what: String| {
        ConsensusError::Unknown(format!(
            "the leader at {leader} did not answer ({what}); a write may or may not have been applied"
        ))
    };
    match links
        .call(None, leader, Kind::Propose, format, &body, timeout)
        .await
    {
        Ok(Some((answered_in, bytes))) => {
            return wire::decode_outcomes(&bytes, answered_in)
                .map_err(|e| unknown(format!("undecodable answer: {e}")))
        }
        Ok(None) => {}
        Err(e) => return Err(unknown(e.to_string())),
    }
    let media = peers::raft_media_type(format);
    let (status, headers, bytes) = post(http, leader, "/raft/propose", timeout, media, body)
        .await
        .map_err(|e| {
            if e.is_connect() {
                ConsensusError::NoQuorum(format!(
                    "the leader at {leader} could not be reached ({e}); nothing was proposed, retry"
                ))
            } else {
                unknown(e.to_string())
            }
        })?;
    peers.record(None, Some(leader), peers::peer_version(&headers));
    if !status.is_success() {
        return Err(unknown(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&bytes)
        )));
    }
    wire::decode_outcomes(&bytes, peers::body_format(&headers))
        .map_err(|e| unknown(format!("undecodable answer: {e}")))
}
