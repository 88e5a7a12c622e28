//! Building and reading OCI image configs and manifests (types from `oci-spec`).
//!
//! Serialisation is canonical (keys sorted, no whitespace) so importing the same content twice
//! yields byte-identical configs and manifests, hence the same digests.

use std::collections::HashMap;

use hoist_proto::{ImageConfig, ImageHealthcheck};
use oci_spec::image::{
    Config, ConfigBuilder, Descriptor, Digest, ImageConfiguration, ImageConfigurationBuilder,
    ImageManifest, ImageManifestBuilder, MediaType, RootFsBuilder,
};
use serde::{Deserialize, Serialize};

use super::ImageError;

/// The `PATH` an imported image gets when its config names none.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Canonical JSON: through `serde_json::Value`, whose maps are sorted (`HashMap` fields are not).
pub fn canonical_json(value: &impl Serialize) -> Result<Vec<u8>, ImageError> {
    serde_json::to_value(value)
        .and_then(|v| serde_json::to_vec(&v))
        .map_err(|e| ImageError::Corrupt(format!("cannot encode json: {e}")))
}

/// Fills the defaults of an imported image: `PATH` when the env has none, `Cmd ["/bin/sh"]`
/// when neither entrypoint nor cmd is given.
pub fn with_import_defaults(config: Option<ImageConfig>) -> ImageConfig {
    let mut config = config.unwrap_or_default();
    if !config.env.iter().any(|e| e.starts_with("PATH=")) {
        config.env.insert(0, DEFAULT_PATH.to_owned());
    }
    if config.cmd.is_none() && config.entrypoint.is_none() {
        config.cmd = Some(vec!["/bin/sh".to_owned()]);
    }
    config
}

/// The fields of Docker's image config (`config` object) that the OCI image spec does not define
/// and `oci-spec` therefore drops: `HEALTHCHECK`, `ONBUILD`, `SHELL`. Docker, BuildKit and Podman
/// write and read them under these names, so an image built here behaves the same there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerExtensions {
    #[serde(
        rename = "Healthcheck",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub healthcheck: Option<DockerHealthcheck>,
    #[serde(rename = "OnBuild", default, skip_serializing_if = "Option::is_none")]
    pub on_build: Option<Vec<String>>,
    #[serde(rename = "Shell", default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
}

/// Docker's `HealthConfig`: durations in nanoseconds, omitted when zero (the default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerHealthcheck {
    #[serde(rename = "Test", default)]
    pub test: Vec<String>,
    #[serde(rename = "Interval", default, skip_serializing_if = "is_zero")]
    pub interval: u64,
    #[serde(rename = "Timeout", default, skip_serializing_if = "is_zero")]
    pub timeout: u64,
    #[serde(rename = "StartPeriod", default, skip_serializing_if = "is_zero")]
    pub start_period: u64,
    #[serde(rename = "StartInterval", default, skip_serializing_if = "is_zero")]
    pub start_interval: u64,
    #[serde(rename = "Retries", default, skip_serializing_if = "is_zero_u32")]
    pub retries: u32,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

/// An image config file as stored: OCI's part and Docker's extensions.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    pub image: ImageConfiguration,
    pub docker: DockerExtensions,
}

impl ConfigFile {
    /// What containers get from this image.
    pub fn container_config(&self) -> ImageConfig {
        let mut c = from_oci_config(self.image.config().as_ref());
        c.healthcheck = self.docker.healthcheck.as_ref().map(|h| ImageHealthcheck {
            test: h.test.clone(),
            interval_ns: h.interval,
            timeout_ns: h.timeout,
            start_period_ns: h.start_period,
            start_interval_ns: h.start_interval,
            retries: h.retries,
        });
        c.shell = self.docker.shell.clone();
        c.on_build = self.docker.on_build.clone().unwrap_or_default();
        c
    }

    /// Canonical JSON of the whole file: OCI's fields with Docker's merged into `config`.
    pub fn to_json(&self) -> Result<Vec<u8>, ImageError> {
        let mut value = serde_json::to_value(&self.image)
            .map_err(|e| ImageError::Corrupt(format!("cannot encode image config: {e}")))?;
        let ext = serde_json::to_value(&self.docker)
            .map_err(|e| ImageError::Corrupt(format!("cannot encode image config: {e}")))?;
        if let (Some(obj), serde_json::Value::Object(ext)) = (value.as_object_mut(), ext) {
            if !ext.is_empty() {
                let config = obj
                    .entry("config")
                    .or_insert_with(|| serde_json::Value::Object(Default::default()));
                if let Some(config) = config.as_object_mut() {
                    config.extend(ext);
                }
            }
        }
        canonical_json(&value)
    }
}

/// Docker's extensions of our config (the inverse of [`ConfigFile::container_config`]).
pub fn docker_extensions(c: &ImageConfig) -> DockerExtensions {
    DockerExtensions {
        healthcheck: c.healthcheck.as_ref().map(|h| DockerHealthcheck {
            test: h.test.clone(),
            interval: h.interval_ns,
            timeout: h.timeout_ns,
            start_period: h.start_period_ns,
            start_interval: h.start_interval_ns,
            retries: h.retries,
        }),
        on_build: (!c.on_build.is_empty()).then(|| c.on_build.clone()),
        shell: c.shell.clone(),
    }
}

/// Our config → the OCI `config` object.
pub fn to_oci_config(c: &ImageConfig) -> Result<Config, ImageError> {
    let mut b = ConfigBuilder::default().env(c.env.clone());
    if !c.volumes.is_empty() {
        b = b.volumes(c.volumes.clone());
    }
    if let Some(u) = &c.user {
        b = b.user(u.clone());
    }
    if let Some(e) = &c.entrypoint {
        b = b.entrypoint(e.clone());
    }
    if let Some(cmd) = &c.cmd {
        b = b.cmd(cmd.clone());
    }
    if let Some(w) = &c.working_dir {
        b = b.working_dir(w.clone());
    }
    if let Some(s) = &c.stop_signal {
        b = b.stop_signal(s.clone());
    }
    if !c.exposed_ports.is_empty() {
        b = b.exposed_ports(c.exposed_ports.clone());
    }
    if !c.labels.is_empty() {
        b = b.labels(
            c.labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<HashMap<_, _>>(),
        );
    }
    b.build()
        .map_err(|e| ImageError::Corrupt(format!("cannot build image config: {e}")))
}

/// The OCI `config` object → ours.
pub fn from_oci_config(c: Option<&Config>) -> ImageConfig {
    let Some(c) = c else {
        return ImageConfig::default();
    };
    let mut exposed_ports = c.exposed_ports().clone().unwrap_or_default();
    exposed_ports.sort();
    ImageConfig {
        user: c.user().clone(),
        env: c.env().clone().unwrap_or_default(),
        entrypoint: c.entrypoint().clone(),
        cmd: c.cmd().clone(),
        working_dir: c.working_dir().clone(),
        stop_signal: c.stop_signal().clone(),
        exposed_ports,
        labels: c.labels().clone().unwrap_or_default().into_iter().collect(),
        volumes: {
            let mut v = c.volumes().clone().unwrap_or_default();
            v.sort();
            v
        },
        ..ImageConfig::default()
    }
}

/// A one-or-more-layer image configuration (no timestamps: imports must be reproducible).
pub fn build_image_config(
    config: &ImageConfig,
    diff_ids: Vec<String>,
) -> Result<Vec<u8>, ImageError> {
    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(diff_ids)
        .build()
        .map_err(|e| ImageError::Corrupt(format!("cannot build rootfs: {e}")))?;
    let image = ImageConfigurationBuilder::default()
        .config(to_oci_config(config)?)
        .rootfs(rootfs)
        .build()
        .map_err(|e| ImageError::Corrupt(format!("cannot build image config: {e}")))?;
    ConfigFile {
        image,
        docker: docker_extensions(config),
    }
    .to_json()
}

/// An OCI image manifest for a config blob and layer blobs.
pub fn build_manifest(config: Descriptor, layers: Vec<Descriptor>) -> Result<Vec<u8>, ImageError> {
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config)
        .layers(layers)
        .build()
        .map_err(|e| ImageError::Corrupt(format!("cannot build manifest: {e}")))?;
    canonical_json(&manifest)
}

/// A descriptor for a blob we just stored.
pub fn descriptor(
    media_type: MediaType,
    size: u64,
    digest: &str,
) -> Result<Descriptor, ImageError> {
    let digest: Digest = digest
        .parse()
        .map_err(|e| ImageError::Corrupt(format!("bad digest {digest:?}: {e}")))?;
    Ok(Descriptor::new(media_type, size, digest))
}

pub fn parse_manifest(bytes: &[u8], digest: &str) -> Result<ImageManifest, ImageError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ImageError::Corrupt(format!("manifest {digest}: {e}")))
}

pub fn parse_image_config(bytes: &[u8], digest: &str) -> Result<ImageConfiguration, ImageError> {
    serde_json::from_slice(bytes).map_err(|e| ImageError::Corrupt(format!("config {digest}: {e}")))
}

/// The whole config file, Docker's extensions included (a malformed extension is ignored, as
/// Docker ignores what it cannot use: the OCI part decides whether the image is usable).
pub fn parse_config_file(bytes: &[u8], digest: &str) -> Result<ConfigFile, ImageError> {
    #[derive(Deserialize)]
    struct Outer {
        #[serde(default)]
        config: Option<DockerExtensions>,
    }
    let image = parse_image_config(bytes, digest)?;
    let docker = serde_json::from_slice::<Outer>(bytes)
        .ok()
        .and_then(|o| o.config)
        .unwrap_or_default();
    Ok(ConfigFile { image, docker })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config as Docker writes it: the extension fields read back, and written back in
    /// Docker's names inside `config`.
    #[test]
    fn docker_extensions_round_trip_in_docker_names() {
        let docker = br#"{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"],"Volumes":{"/data":{}},"Healthcheck":{"Test":["CMD","/check"],"Interval":30000000000,"Retries":3},"OnBuild":["RUN make"],"Shell":["/bin/bash","-c"]},"rootfs":{"type":"layers","diff_ids":[]}}"#;
        let file = parse_config_file(docker, "sha256:x").unwrap();
        let c = file.container_config();
        assert_eq!(c.volumes, ["/data"]);
        let h = c.healthcheck.clone().unwrap();
        assert_eq!(
            (h.test, h.interval_ns, h.retries, h.timeout_ns),
            (vec!["CMD".into(), "/check".into()], 30_000_000_000, 3, 0)
        );
        assert_eq!(c.on_build, ["RUN make"]);
        assert_eq!(
            c.shell.as_deref(),
            Some(&["/bin/bash".to_owned(), "-c".to_owned()][..])
        );
        let json: serde_json::Value = serde_json::from_slice(&file.to_json().unwrap()).unwrap();
        assert_eq!(
            json["config"]["Healthcheck"]["Test"],
            serde_json::json!(["CMD", "/check"])
        );
        assert!(
            json["config"]["Healthcheck"].get("Timeout").is_none(),
            "zero is omitted"
        );
        assert_eq!(json["config"]["OnBuild"], serde_json::json!(["RUN make"]));
        assert_eq!(docker_extensions(&c), file.docker);
    }

    #[test]
    fn configs_without_extensions_keep_their_bytes() {
        let config = ImageConfig {
            cmd: Some(vec!["sh".into()]),
            ..ImageConfig::default()
        };
        let bytes = build_image_config(&config, vec![]).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            !text.contains("Healthcheck") && !text.contains("OnBuild") && !text.contains("Shell"),
            "{text}"
        );
        // A malformed extension does not make the image unusable.
        let odd = br#"{"architecture":"amd64","os":"linux","config":{"Healthcheck":"yes"},"rootfs":{"type":"layers","diff_ids":[]}}"#;
        assert_eq!(
            parse_config_file(odd, "sha256:y").unwrap().docker,
            DockerExtensions::default()
        );
    }
}
