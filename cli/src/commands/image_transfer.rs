//! `hoist image pull|push|load|save|inspect|history|tag|prune`: the registry and archive side of
//! image management. Pull and push stream progress from the agent: bars with sizes and speeds on
//! a terminal, one plain line per step otherwise, and the records themselves with `-o json`.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;

use hoist_proto::{
    HistoryEntry, ImageInspect, ImageProgress, ImageSummary, PruneReport, PullRequest, PushRequest,
    TagRequest,
};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::registry::credentials_for;
use crate::client::{enc, Client, ClientError};
use crate::output::{self, Format};

fn short(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}

/// Renders a progress stream; returns the last record.
struct Renderer {
    format: Format,
    bars: Option<(MultiProgress, BTreeMap<String, ProgressBar>)>,
    shown: BTreeMap<String, String>,
}

impl Renderer {
    fn new(format: Format) -> Self {
        let bars = (format == Format::Table && std::io::stderr().is_terminal())
            .then(|| (MultiProgress::new(), BTreeMap::new()));
        Self {
            format,
            bars,
            shown: BTreeMap::new(),
        }
    }

    fn record(&mut self, p: &ImageProgress) {
        if self.format == Format::Json {
            println!("{}", serde_json::to_string(p).unwrap_or_default());
            return;
        }
        if p.id.is_empty() || p.status == "manifest" {
            return;
        }
        if let Some((multi, bars)) = &mut self.bars {
            let bar = bars.entry(p.id.clone()).or_insert_with(|| {
                let b = multi.add(ProgressBar::new(p.total));
                b.set_style(
                    ProgressStyle::with_template(
                        "{prefix} {msg:11} [{bar:30}] {bytes:>10}/{total_bytes:10} {bytes_per_sec:>12}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                b.set_prefix(short(&p.id));
                b
            });
            bar.set_length(p.total);
            bar.set_position(p.current);
            bar.set_message(p.status.clone());
            if matches!(p.status.as_str(), "done" | "exists" | "mounted") {
                bar.finish();
            }
            return;
        }
        // Plain lines: each layer's status once per change (not every byte count).
        if self.shown.get(&p.id) != Some(&p.status) {
            self.shown.insert(p.id.clone(), p.status.clone());
            let size = hoist_common::parse::format_size(p.total);
            println!("{}: {} ({size})", short(&p.id), p.status);
        }
    }
}

async fn run_stream(
    client: &Client,
    path: &str,
    body: &impl serde::Serialize,
    format: Format,
) -> Result<ImageProgress, ClientError> {
    let mut r = Renderer::new(format);
    let mut last = None;
    client
        .stream(hyper::Method::POST, path, Some(body), |p: ImageProgress| {
            r.record(&p);
            let done = p.status == "error" || p.status == "pulled" || p.status == "pushed";
            last = Some(p);
            !done
        })
        .await?;
    if let Some((multi, _)) = &r.bars {
        let _ = multi.clear();
    }
    let last =
        last.ok_or_else(|| ClientError::Transport("the agent ended the stream early".into()))?;
    if let Some(e) = &last.error {
        return Err(ClientError::Transport(e.clone()));
    }
    Ok(last)
}

pub async fn pull(
    client: &Client,
    format: Format,
    reference: String,
    platform: Option<String>,
) -> Result<i32, ClientError> {
    let req = PullRequest {
        auth: credentials_for(&reference)?,
        reference: reference.clone(),
        platform,
    };
    let last = run_stream(client, "/v1/images/pull", &req, format).await?;
    if format == Format::Table {
        let id = last
            .image
            .as_ref()
            .map(|i| i.id.clone())
            .unwrap_or_default();
        println!("Pulled {reference}: {id}");
        println!("Digest: {}", last.digest.unwrap_or_default());
    }
    Ok(0)
}

pub async fn push(client: &Client, format: Format, reference: String) -> Result<i32, ClientError> {
    let req = PushRequest {
        auth: credentials_for(&reference)?,
        reference: reference.clone(),
    };
    let last = run_stream(client, "/v1/images/push", &req, format).await?;
    if format == Format::Table {
        println!("Pushed {reference}");
        println!("Digest: {}", last.digest.unwrap_or_default());
    }
    Ok(0)
}

pub async fn load(
    client: &Client,
    format: Format,
    input: Option<PathBuf>,
    tag: Option<String>,
) -> Result<i32, ClientError> {
    let path = input.unwrap_or_else(|| PathBuf::from("/dev/stdin"));
    let f = tokio::fs::File::open(&path)
        .await
        .map_err(|e| ClientError::Transport(format!("{}: {e}", path.display())))?;
    let mut url = "/v1/images/load".to_owned();
    if let Some(t) = tag {
        url.push_str(&format!("?tag={}", enc(&t)));
    }
    let loaded: Vec<ImageSummary> = client.upload(&url, f).await?;
    match format {
        Format::Json => output::json(&loaded),
        Format::Table => {
            for i in &loaded {
                println!(
                    "Loaded image: {} ({})",
                    i.references.join(", "),
                    short(&i.id)
                );
            }
        }
    }
    Ok(0)
}

pub async fn save(
    client: &Client,
    reference: String,
    output_file: Option<PathBuf>,
    archive_format: String,
) -> Result<i32, ClientError> {
    let url = format!(
        "/v1/images/save?reference={}&format={}",
        enc(&reference),
        enc(&archive_format)
    );
    match output_file {
        Some(path) => {
            let tmp = path.with_extension("partial");
            let mut f = tokio::fs::File::create(&tmp)
                .await
                .map_err(|e| ClientError::Transport(format!("{}: {e}", tmp.display())))?;
            let result = client.download(&url, &mut f).await;
            if let Err(e) = result {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(e);
            }
            tokio::fs::rename(&tmp, &path)
                .await
                .map_err(|e| ClientError::Transport(format!("{}: {e}", path.display())))?;
        }
        None => {
            if std::io::stdout().is_terminal() {
                return Err(ClientError::Transport(
                    "refusing to write an archive to a terminal: use -o FILE or redirect".into(),
                ));
            }
            client.download(&url, &mut tokio::io::stdout()).await?;
        }
    }
    Ok(0)
}

pub async fn inspect(client: &Client, images: Vec<String>) -> Result<i32, ClientError> {
    let mut out = Vec::new();
    for i in images {
        let v: ImageInspect = client
            .get(&format!("/v1/images/inspect?reference={}", enc(&i)))
            .await?;
        out.push(v);
    }
    output::json(&out);
    Ok(0)
}

pub async fn history(client: &Client, format: Format, image: String) -> Result<i32, ClientError> {
    let h: Vec<HistoryEntry> = client
        .get(&format!("/v1/images/history?reference={}", enc(&image)))
        .await?;
    match format {
        Format::Json => output::json(&h),
        Format::Table => {
            let rows = h
                .iter()
                .map(|e| {
                    vec![
                        e.created
                            .as_deref()
                            .map(|c| format!("{} ago", output::since(c)))
                            .unwrap_or_default(),
                        e.created_by
                            .clone()
                            .unwrap_or_default()
                            .chars()
                            .take(60)
                            .collect(),
                        hoist_common::parse::format_size(e.size),
                        e.comment.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            output::table(&["CREATED", "CREATED BY", "SIZE", "COMMENT"], rows);
        }
    }
    Ok(0)
}

pub async fn tag(client: &Client, source: String, target: String) -> Result<i32, ClientError> {
    let _: ImageSummary = client
        .call(
            hyper::Method::POST,
            "/v1/images/tag",
            Some(&TagRequest { source, target }),
        )
        .await?;
    Ok(0)
}

pub async fn prune(client: &Client, format: Format) -> Result<i32, ClientError> {
    let r: PruneReport = client
        .call(hyper::Method::POST, "/v1/images/prune", None::<&()>)
        .await?;
    match format {
        Format::Json => output::json(&r),
        Format::Table => println!(
            "Deleted {} blobs and {} snapshots; reclaimed {}",
            r.blobs,
            r.snapshots,
            hoist_common::parse::format_size(r.bytes)
        ),
    }
    Ok(0)
}
