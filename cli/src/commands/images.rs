//! `hoist image ...`: the command tree; `import|ls|rm` here, the registry and archive commands in
//! `image_transfer.rs`.

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
    /// Pull an image from a registry: `[REGISTRY/]REPO[:TAG][@DIGEST]` (defaults: docker.io,
    /// library/, latest). Uses the credentials of `hoist login` for that registry.
    Pull {
        reference: String,
        /// Pick this platform from a multi-platform image, `OS/ARCH[/VARIANT]` (default linux/amd64).
        #[arg(long)]
        platform: Option<String>,
    },
    /// Push a local image to the registry its name points at (tag it first: `hoist image tag`).
    Push { reference: String },
    /// Load images from a docker-archive (`docker save`) or oci-archive tarball.
    Load {
        /// The tarball (default: standard input).
        #[arg(long, short = 'i')]
        input: Option<PathBuf>,
        /// Name for an image the archive leaves unnamed.
        #[arg(long)]
        tag: Option<String>,
    },
    /// Save an image as a docker-archive or oci-archive tarball.
    Save {
        image: String,
        /// Write here instead of standard output.
        #[arg(long = "output-file", short = 'f')]
        output_file: Option<PathBuf>,
        /// `docker` (what `docker load` reads) or `oci` (an OCI image layout).
        #[arg(long, default_value = "docker", value_parser = ["docker", "oci"])]
        format: String,
    },
    /// Show an image's id, digests, config and layers (JSON).
    Inspect {
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Show how an image's layers were made, newest first.
    History { image: String },
    /// Give an image another name: `hoist image tag SOURCE TARGET[:TAG]`.
    Tag { source: String, target: String },
    /// Delete blobs and unpacked layers no image and no container uses.
    Prune,
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
    use super::image_transfer as t;
    match cmd {
        ImageCmd::Pull {
            reference,
            platform,
        } => return t::pull(client, format, reference, platform).await,
        ImageCmd::Push { reference } => return t::push(client, format, reference).await,
        ImageCmd::Load { input, tag } => return t::load(client, format, input, tag).await,
        ImageCmd::Save {
            image,
            output_file,
            format: archive,
        } => return t::save(client, image, output_file, archive).await,
        ImageCmd::Inspect { images } => return t::inspect(client, images).await,
        ImageCmd::History { image } => return t::history(client, format, image).await,
        ImageCmd::Tag { source, target } => return t::tag(client, source, target).await,
        ImageCmd::Prune => return t::prune(client, format).await,
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
