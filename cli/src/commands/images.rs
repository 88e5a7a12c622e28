//! `hoist image import|ls|rm`.

use crate::client::{enc, Client, ClientError};
use crate::output::{self, Format};
use clap::Subcommand;
use hoist_proto::ImageSummary;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum ImageCmd {
    /// Import a root filesystem tarball (plain, gzip or zstd) as a one-layer image.
    Import {
        /// The tarball, e.g. made with `tar -C rootfs -cf rootfs.tar .`
        file: PathBuf,
        /// NAME[:TAG] for the image (tag defaults to latest).
        reference: String,
    },
    /// List images.
    #[command(alias = "list")]
    Ls,
    /// Remove images (untag; data is freed when nothing uses it).
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        images: Vec<String>,
    },
}

pub async fn run(cmd: ImageCmd, client: &Client, format: Format) -> Result<i32, ClientError> {
    match cmd {
        ImageCmd::Import { file, reference } => {
            let f = tokio::fs::File::open(&file)
                .await
                .map_err(|e| ClientError::Transport(format!("{}: {e}", file.display())))?;
            let summary: ImageSummary = client
                .upload(
                    &format!("/v1/images/import?reference={}", enc(&reference)),
                    f,
                )
                .await?;
            match format {
                Format::Json => output::json(&summary),
                Format::Table => println!("Imported {reference}: {}", summary.id),
            }
        }
        ImageCmd::Ls => {
            let images: Vec<ImageSummary> = client.get("/v1/images").await?;
            match format {
                Format::Json => output::json(&images),
                Format::Table => {
                    let mut rows = Vec::new();
                    for i in &images {
                        let id =
                            i.id.trim_start_matches("sha256:")
                                .chars()
                                .take(12)
                                .collect::<String>();
                        let created = i
                            .created_at
                            .as_deref()
                            .map(|c| format!("{} ago", output::since(c)))
                            .unwrap_or_default();
                        let size = hoist_common::parse::format_size(i.size);
                        let refs = if i.references.is_empty() {
                            vec!["<none>:<none>".to_string()]
                        } else {
                            i.references.clone()
                        };
                        for r in refs {
                            let (repo, tag) = r.rsplit_once(':').unwrap_or((&r, ""));
                            rows.push(vec![
                                repo.to_string(),
                                tag.to_string(),
                                id.clone(),
                                created.clone(),
                                size.clone(),
                            ]);
                        }
                    }
                    output::table(&["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], rows);
                }
            }
        }
        ImageCmd::Rm { images } => {
            let mut code = 0;
            for i in images {
                match client
                    .call::<()>(
                        hyper::Method::DELETE,
                        &format!("/v1/images/{}", enc(&i)),
                        None::<&()>,
                    )
                    .await
                {
                    Ok(()) => println!("Untagged: {i}"),
                    Err(e) => {
                        eprintln!("hoist: {e}");
                        code = 1;
                    }
                }
            }
            return Ok(code);
        }
    }
    Ok(0)
}
