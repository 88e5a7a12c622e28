//! Store behaviours that span its parts: Docker's config fields survive a store round trip, and
//! Docker's name normalisation finds local images.

use hoist_proto::{ImageConfig, ImageHealthcheck};

use super::testutil::{layer, E};
use super::ImageStore;

fn store() -> (tempfile::TempDir, ImageStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&dir.path().join("images")).unwrap();
    (dir, store)
}

fn one_file_layer() -> Vec<u8> {
    layer(&[
        E::Dir("etc".into()),
        E::File("etc/motd".into(), b"hi\n".to_vec()),
    ])
}

#[test]
fn docker_names_find_the_same_local_image() {
    let (_d, store) = store();
    store
        .import(&mut &one_file_layer()[..], "busybox", None)
        .unwrap();
    let id = store.resolve("busybox").unwrap().id;
    for name in [
        "busybox:latest",
        "library/busybox",
        "docker.io/library/busybox:latest",
        "index.docker.io/library/busybox",
    ] {
        assert_eq!(store.resolve(name).unwrap().id, id, "{name}");
    }
    assert!(store.resolve("docker.io/other/busybox").is_err());
}

#[test]
fn healthcheck_shell_onbuild_and_volumes_survive_the_store() {
    let (_d, store) = store();
    let config = ImageConfig {
        cmd: Some(vec!["sh".into()]),
        volumes: vec!["/data".into()],
        healthcheck: Some(ImageHealthcheck {
            test: vec!["CMD-SHELL".into(), "test -e /ready".into()],
            interval_ns: 5_000_000_000,
            retries: 2,
            ..Default::default()
        }),
        shell: Some(vec!["/bin/ash".into(), "-c".into()]),
        on_build: vec!["RUN echo child".into()],
        ..ImageConfig::default()
    };
    store
        .import(&mut &one_file_layer()[..], "full:1", Some(config.clone()))
        .unwrap();
    let got = store.resolve("full:1").unwrap().config;
    assert_eq!(got.volumes, config.volumes);
    assert_eq!(got.healthcheck, config.healthcheck);
    assert_eq!(got.shell, config.shell);
    assert_eq!(got.on_build, config.on_build);
    assert_eq!(
        store.inspect("full:1").unwrap().config.healthcheck,
        config.healthcheck
    );
}

#[test]
fn removing_a_normalised_name_untags_only_that_name() {
    let (_d, store) = store();
    store
        .import(&mut &one_file_layer()[..], "busybox", None)
        .unwrap();
    store.tag("busybox", "mine:1").unwrap();
    store.remove("docker.io/library/busybox:latest").unwrap();
    assert!(store.resolve("busybox").is_err());
    assert!(store.resolve("mine:1").is_ok(), "the other name stays");
}

#[test]
fn a_reference_with_tag_and_digest_finds_only_those_bits() {
    let (_d, store) = store();
    store
        .import(&mut &one_file_layer()[..], "reg.example/app:v1", None)
        .unwrap();
    let first = store.manifest_digest_of("reg.example/app:v1").unwrap();
    let id = store.resolve("reg.example/app:v1").unwrap().id;
    let pinned = format!("reg.example/app:v1@{first}");
    assert_eq!(store.resolve(&pinned).unwrap().id, id);
    let other = format!("reg.example/app:v1@sha256:{}", "0".repeat(64));
    assert!(matches!(
        store.resolve(&other),
        Err(super::ImageError::NotFound(_))
    ));
    // The tag moves to other bits: the pinned reference no longer finds it by the tag.
    let second = layer(&[E::File("motd".into(), b"v2\n".to_vec())]);
    store
        .import(&mut &second[..], "reg.example/app:v1", None)
        .unwrap();
    assert_ne!(store.resolve("reg.example/app:v1").unwrap().id, id);
    assert!(store.resolve(&pinned).is_err());
}
