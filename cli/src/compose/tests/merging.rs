//! Several `-c` files, YAML anchors and merge keys, `extends`, `!reset` and `!override`.

use super::*;

const BASE: &str = r#"
services:
  web:
    image: shop/web:1
    command: ["serve", "--port", "80"]
    environment:
      - MODE=dev
      - LOG=debug
    labels: { tier: front }
    ports: ["8080:80"]
    volumes:
      - static:/static
      - ./conf:/etc/web:ro
    deploy:
      replicas: 1
      placement:
        constraints: [node.labels.zone==a]
      resources:
        limits: { memory: 256M, cpus: "0.5" }
  worker:
    image: shop/worker:1
volumes:
  static:
"#;

const OVERRIDE: &str = r#"
services:
  web:
    image: shop/web:2
    command: serve --port 8080
    environment:
      MODE: prod
    labels: [team=web]
    ports: ["8443:443", "8080:80"]
    volumes:
      - /srv/conf:/etc/web
    deploy:
      replicas: 3
      placement:
        constraints: [node.labels.ssd==true]
      resources:
        limits: { memory: 512M }
  cron:
    image: shop/cron:1
"#;

#[test]
fn later_files_override_scalars_merge_maps_and_append_lists() {
    let l = Project::new(BASE).file("override.yaml", OVERRIDE).ok();
    let names: Vec<&str> = l.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["shop_web", "shop_worker", "shop_cron"]);
    let s = svc(&l, "web");
    assert_eq!(s.image, "shop/web:2");
    assert_eq!(
        s.args,
        ["serve", "--port", "8080"],
        "command is replaced, not appended"
    );
    assert_eq!(s.env["MODE"], "prod");
    assert_eq!(s.env["LOG"], "debug", "the list and map forms merge");
    assert_eq!(s.labels["tier"], "front");
    assert_eq!(s.labels["team"], "web");
    let ports: Vec<_> = s.ports.iter().map(|p| (p.published, p.target)).collect();
    assert_eq!(
        ports,
        [(Some(8080), 80), (Some(8443), 443)],
        "appended, duplicates dropped"
    );
    let mounts: Vec<_> = s
        .mounts
        .iter()
        .map(|m| (m.source.clone().unwrap(), m.target.clone(), m.read_only))
        .collect();
    assert_eq!(
        mounts,
        [
            ("shop_static".to_string(), "/static".to_string(), false),
            ("/srv/conf".to_string(), "/etc/web".to_string(), false),
        ],
        "a volume with the same target is replaced"
    );
    assert_eq!(s.replicas, 3);
    assert_eq!(
        s.placement.constraints,
        ["node.labels.zone==a", "node.labels.ssd==true"]
    );
    let lim = s.resources.limits.as_ref().unwrap();
    assert_eq!(
        (lim.memory.clone(), lim.cpu.clone()),
        (Some("512M".into()), Some("0.5".into()))
    );
}

#[test]
fn errors_name_the_file_that_wrote_the_key() {
    let e = Project::new(BASE)
        .file("override.yaml", "services:\n  web:\n    privileged: true\n")
        .err();
    assert_eq!(e, "/p/override.yaml: service web: privileged: Hoist cannot honour privileged: replicas run with Hoist's default capabilities");
}

#[test]
fn reset_and_override_tags() {
    let l = Project::new(BASE)
        .file(
            "override.yaml",
            "services:\n  web:\n    ports: !reset []\n    labels: !override\n      only: this\n    deploy:\n      placement: !reset\n",
        )
        .ok();
    let s = svc(&l, "web");
    assert!(s.ports.is_empty());
    assert_eq!(s.labels.len(), 1);
    assert_eq!(s.labels["only"], "this");
    assert!(s.placement.constraints.is_empty());
    let e = Project::new("services:\n  a:\n    image: !custom x\n").err();
    assert_contains(
        &e,
        "services.a.image: the YAML tag !custom is not supported",
    );
}

#[test]
fn anchors_aliases_and_merge_keys() {
    let l = Project::new(
        r#"
x-common: &common
  image: shop/base:1
  environment: &env
    TZ: UTC
  deploy:
    restart_policy: { condition: on-failure }
x-more: &more
  <<: *common
  user: app
services:
  a:
    <<: *common
    command: [a]
  b:
    <<: [*more, {hostname: b-host, user: ignored}]
    environment:
      <<: *env
      EXTRA: "1"
  c:
    image: shop/c:1
    environment: *env
"#,
    )
    .ok();
    let (a, b, c) = (svc(&l, "a"), svc(&l, "b"), svc(&l, "c"));
    assert_eq!(a.image, "shop/base:1");
    assert_eq!(a.args, ["a"]);
    assert_eq!(
        a.restart.condition,
        hoist_proto::service::RestartCondition::OnFailure
    );
    assert_eq!(b.image, "shop/base:1", "a merge of a merge");
    assert_eq!(
        b.user.as_deref(),
        Some("app"),
        "the first merged mapping wins"
    );
    assert_eq!(b.hostname.as_deref(), Some("b-host"));
    assert_eq!(b.env.len(), 2);
    assert_eq!(c.env["TZ"], "UTC");
}

#[test]
fn extends_in_the_same_file_and_another() {
    let l = Project::new(
        r#"
services:
  base:
    image: shop/app:1
    environment: { A: base, B: base }
    env_file: base.env
  web:
    extends: base
    environment: { B: web }
    ports: ["80:80"]
  worker:
    extends:
      service: job
      file: common/jobs.yaml
    command: ["work"]
"#,
    )
    .other("base.env", "FROM_FILE=1\n")
    .other(
        "common/jobs.yaml",
        "services:\n  job:\n    extends: runner\n    volumes: [\"./scripts:/scripts\"]\n    env_file: job.env\n  runner:\n    image: shop/runner:3\n    init: true\n",
    )
    .other("common/job.env", "JOB=1\n")
    .ok();
    let web = svc(&l, "web");
    assert_eq!(web.image, "shop/app:1");
    assert_eq!(
        (
            web.env["A"].as_str(),
            web.env["B"].as_str(),
            web.env["FROM_FILE"].as_str()
        ),
        ("base", "web", "1")
    );
    let worker = svc(&l, "worker");
    assert_eq!(worker.image, "shop/runner:3");
    assert_eq!(worker.init, Some(true));
    assert_eq!(worker.args, ["work"]);
    assert_eq!(
        worker.env["JOB"], "1",
        "the other file's env_file is relative to it"
    );
    assert_eq!(
        worker.mounts[0].source.as_deref(),
        Some("/p/common/scripts")
    );
}

#[test]
fn extends_errors() {
    let e = Project::new("services:\n  a:\n    extends: nope\n").err();
    assert_eq!(
        e,
        "/p/compose.yaml: service a: extends: there is no service \"nope\" in /p/compose.yaml"
    );
    let e =
        Project::new("services:\n  a:\n    image: x\n    extends: b\n  b:\n    extends: a\n").err();
    assert_contains(&e, "extends: a cycle: a → b → a");
    let e =
        Project::new("services:\n  a:\n    extends: { service: x, file: missing.yaml }\n").err();
    assert_contains(
        &e,
        "/p/compose.yaml: service a: extends: reading /p/missing.yaml",
    );
    let e = Project::new("services:\n  a:\n    extends: { service: x, file: bad.yaml }\n")
        .other("bad.yaml", "services:\n  x:\n    image: [unclosed\n")
        .err();
    assert_contains(&e, "/p/bad.yaml:");
    let e = Project::new("services:\n  a:\n    extends: { name: x }\n").err();
    assert_contains(&e, "service a: extends: name: not an extends key");
}
