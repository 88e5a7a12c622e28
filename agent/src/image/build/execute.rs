//! The steps that change the filesystem: RUN in a container of Hoist's runtime, COPY/ADD through
//! a private overlay, and committing an upper directory as a layer.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use hoist_proto::{BuildEvent, CreateContainer, ImageConfig, NetworkMode};

use super::dockerfile::{Dockerfile, Instruction};
use super::run_mount::RunMount;
use super::{blocking, copy, layer, line_err, Builder, State, StepResult};
use crate::containers::LogOptions;
use crate::error::AgentError;
use crate::image::{BuiltLayer, ResolvedImage};

impl Builder {
    /// The snapshot directories of a state, lowest first (an empty dir for `FROM scratch`).
    pub(super) fn lowers(&self, state: &State) -> StepResult<Vec<PathBuf>> {
        let mut out = Vec::new();
        for d in state.config.rootfs().diff_ids() {
            out.push(self.store.snapshot_path(d)?);
        }
        if out.is_empty() {
            out.push(self.empty.clone());
        }
        Ok(out)
    }

    /// The layers of a state for a read-only overlay, which needs at least two lower
    /// directories: padded with empty ones (distinct: the kernel refuses a directory twice).
    pub(super) fn readonly_lowers(&self, state: &State) -> StepResult<Vec<PathBuf>> {
        let mut lowers = self.lowers(state)?;
        if lowers.len() < 2 {
            let second = self.empty.with_file_name("empty-lower");
            std::fs::create_dir_all(&second)
                .map_err(|e| AgentError::internal("create empty lower dir", e))?;
            let pad = if lowers.first() == Some(&self.empty) {
                second
            } else {
                self.empty.clone()
            };
            lowers.insert(0, pad);
        }
        Ok(lowers)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn run_step(
        &mut self,
        df: &Dockerfile,
        stage: usize,
        state: &State,
        inst: &Instruction,
        argv: Vec<String>,
        env: Vec<String>,
        run_mounts: Vec<RunMount>,
        network: NetworkMode,
        config: &ImageConfig,
    ) -> StepResult<BuiltLayer> {
        let lowers = self.lowers(state)?;
        let mut prepared = self.prepare_mounts(df, stage, inst, &run_mounts).await?;
        // The mounts' targets, which stay out of the step's layer.
        let targets: Vec<String> = prepared
            .volumes
            .iter()
            .map(|v| v.container_path.trim_start_matches('/').to_owned())
            .collect();
        let image = ResolvedImage {
            id: "build".into(),
            reference: "<build>".into(),
            config: config.clone(),
            layers: lowers.clone(),
        };
        let short: String = hoist_common::ids::new_id().chars().take(12).collect();
        let req = CreateContainer {
            image: "<build>".into(),
            name: Some(format!("hoist-build-{short}")),
            cmd: argv.clone(),
            entrypoint: Some(Vec::new()),
            env,
            network,
            volumes: std::mem::take(&mut prepared.volumes),
            labels: BTreeMap::from([("hoist.build".to_owned(), "true".to_owned())]),
            ..Default::default()
        };
        let (c, _) = self
            .mgr
            .create_from(req, image, true, Instant::now())
            .await
            .map_err(|e| line_err(inst, format!("RUN could not start: {e}")))?;
        let id = c.record.id.clone();
        let result = async {
            let mut logs = self.mgr.logs(
                &id,
                LogOptions {
                    follow: true,
                    tail: None,
                    ..LogOptions::default()
                },
            )?;
            loop {
                tokio::select! {
                    chunk = logs.recv() => match chunk {
                        Some(chunk) => self.emit(BuildEvent::Output(chunk)).await,
                        None => break,
                    },
                    // The container is force-removed below, which kills it.
                    () = self.tx.closed() => return Err(self.check_cancelled().err().unwrap_or_else(
                        || AgentError::Conflict("build cancelled".into()),
                    )),
                }
            }
            let exit = c.wait_exit().await;
            if exit.code != 0 {
                return Err(line_err(
                    inst,
                    format!(
                        "the command {} returned a non-zero code: {}",
                        serde_json::to_string(&argv).unwrap_or_default(),
                        exit.code
                    ),
                ));
            }
            self.commit(c.dir.upper(), lowers, targets).await
        }
        .await;
        if let Err(e) = self.mgr.remove(&id, true).await {
            tracing::warn!(%id, error = %e, "remove build container");
        }
        prepared.release();
        result
    }

    pub(super) async fn copy_step(
        &mut self,
        state: &State,
        inst: &Instruction,
        mut spec: copy::CopySpec,
    ) -> StepResult<BuiltLayer> {
        let scratch = tempfile::Builder::new()
            .prefix("copy-")
            .tempdir_in(&self.tmp)
            .map_err(|e| AgentError::internal("create build temp dir", e))?;
        for d in ["upper", "work", "mnt"] {
            std::fs::create_dir(scratch.path().join(d))
                .map_err(|e| AgentError::internal("create build temp dir", e))?;
        }
        spec.lowers = self.lowers(state)?;
        if let copy::CopyFrom::Layers { mountpoint, .. } = &mut spec.from {
            let src = scratch.path().join("src");
            std::fs::create_dir(&src)
                .map_err(|e| AgentError::internal("create build temp dir", e))?;
            *mountpoint = src;
        }
        spec.upper = scratch.path().join("upper");
        spec.work = scratch.path().join("work");
        spec.mountpoint = scratch.path().join("mnt");
        let lowers = spec.lowers.clone();
        let upper = spec.upper.clone();
        blocking(move || copy::run(spec).map_err(AgentError::Invalid))
            .await
            .map_err(|e| line_err(inst, format!("{} failed: {e}", inst.cmd.name())))?;
        let layer = self.commit(upper, lowers, Vec::new()).await;
        let _ = blocking(move || {
            scratch
                .close()
                .map_err(|e| AgentError::internal("cleanup", e))
        })
        .await;
        layer
    }

    /// Upper directory → layer tar → blob + snapshot in the store; `mount_points` (a RUN
    /// step's `--mount` targets) stay out of it.
    pub(super) async fn commit(
        &self,
        upper: PathBuf,
        lowers: Vec<PathBuf>,
        mount_points: Vec<String>,
    ) -> StepResult<BuiltLayer> {
        let store = self.store.clone();
        let tmp = self.tmp.clone();
        blocking(move || {
            let tar = tempfile::Builder::new()
                .prefix("layer-")
                .suffix(".tar")
                .tempfile_in(&tmp)
                .map_err(|e| AgentError::internal("create layer file", e))?;
            layer::write_diff_without(&upper, &lowers, &mount_points, tar.path())
                .map_err(|e| AgentError::internal("write layer", e))?;
            Ok(store.add_built_layer(tar.path())?)
        })
        .await
    }
}
