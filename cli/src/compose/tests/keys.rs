//! Every supported service key, and the warned and refused ones.

use super::*;
use hoist_proto::quantity::Quantity;
use hoist_proto::service::*;

#[test]
fn a_full_service_converts_key_by_key() {
    let l = Project::new(
        r#"
services:
  api:
    image: registry.example.com/shop/api:2.1
    entrypoint: ["/usr/bin/tini", "--"]
    command: gunicorn -w 4 "app:create_app()" --bind '0.0.0.0:8000'
    environment:
      MODE: production
      WORKERS: 4
      DEBUG: false
    ports:
      - "8000:8000"
      - "9000:9000/udp"
      - "7000"
      - target: 443
        published: 8443
        protocol: tcp
        mode: host
    volumes:
      - data:/var/lib/api
      - /etc/ssl/certs:/etc/ssl/certs:ro
      - type: tmpfs
        target: /scratch
        tmpfs:
          size: 64m
          mode: 1777
    tmpfs:
      - /run:size=16m,mode=0755
    user: "1000:1000"
    working_dir: /srv
    hostname: api-host
    init: true
    read_only: true
    ulimits:
      nofile: { soft: 1024, hard: 4096 }
      nproc: 512
    healthcheck:
      test: ["CMD", "curl", "-fsS", "http://localhost:8000/health"]
      interval: 15s
      timeout: 3s
      retries: 5
      start_period: 1m
    stop_signal: SIGINT
    stop_grace_period: 1m30s
    labels:
      com.example.team: shop
    deploy:
      mode: replicated
      replicas: 3
      endpoint_mode: dnsrr
      resources:
        limits: { cpus: "1.5", memory: 512M, pids: 200 }
        reservations: { cpus: "0.25", memory: 128M }
      restart_policy:
        condition: on-failure
        delay: 5s
        max_attempts: 3
        window: 2m
      update_config:
        parallelism: 2
        delay: 10s
        failure_action: rollback
        monitor: 30s
        max_failure_ratio: 0.25
        order: start-first
      placement:
        constraints: ["node.labels.zone == eu-1", "node.hostname!=n3"]
        max_replicas_per_node: 2
        preferences:
          - spread: node.labels.rack
volumes:
  data:
"#,
    )
    .ok();
    let s = svc(&l, "api");
    assert_eq!(s.image, "registry.example.com/shop/api:2.1");
    assert_eq!(s.command, ["/usr/bin/tini", "--"]);
    assert_eq!(
        s.args,
        [
            "gunicorn",
            "-w",
            "4",
            "app:create_app()",
            "--bind",
            "0.0.0.0:8000"
        ]
    );
    assert_eq!(s.env["MODE"], "production");
    assert_eq!(s.env["WORKERS"], "4");
    assert_eq!(s.env["DEBUG"], "false");
    let port = |target, published, protocol, mode| ServicePort {
        target,
        published,
        protocol,
        mode,
    };
    assert_eq!(
        s.ports,
        [
            port(8000, Some(8000), PortProtocol::Tcp, PortMode::Ingress),
            port(9000, Some(9000), PortProtocol::Udp, PortMode::Ingress),
            port(7000, None, PortProtocol::Tcp, PortMode::Ingress),
            port(443, Some(8443), PortProtocol::Tcp, PortMode::Host),
        ]
    );
    let mount = |kind,
                 source: Option<&str>,
                 target: &str,
                 read_only,
                 size: Option<&str>,
                 mode: Option<&str>| Mount {
        kind,
        source: source.map(Into::into),
        target: target.into(),
        read_only,
        size: size.map(Quantity::from),
        mode: mode.map(Into::into),
    };
    assert_eq!(
        s.mounts,
        [
            mount(
                MountType::Volume,
                Some("shop_data"),
                "/var/lib/api",
                false,
                None,
                None
            ),
            mount(
                MountType::Bind,
                Some("/etc/ssl/certs"),
                "/etc/ssl/certs",
                true,
                None,
                None
            ),
            mount(
                MountType::Tmpfs,
                None,
                "/scratch",
                false,
                Some("64m"),
                Some("1777")
            ),
            mount(
                MountType::Tmpfs,
                None,
                "/run",
                false,
                Some("16m"),
                Some("0755")
            ),
        ]
    );
    assert_eq!(s.user.as_deref(), Some("1000:1000"));
    assert_eq!(s.workdir.as_deref(), Some("/srv"));
    assert_eq!(s.hostname.as_deref(), Some("api-host"));
    assert_eq!(s.init, Some(true));
    assert!(s.read_only);
    assert_eq!(
        s.ulimits["nofile"],
        Ulimit {
            soft: 1024,
            hard: 4096
        }
    );
    assert_eq!(
        s.ulimits["nproc"],
        Ulimit {
            soft: 512,
            hard: 512
        }
    );
    assert_eq!(
        s.health_check,
        Some(HealthCheck {
            command: vec![
                "curl".into(),
                "-fsS".into(),
                "http://localhost:8000/health".into()
            ],
            http_path: None,
            tcp_port: None,
            interval: "15s".into(),
            timeout: "3s".into(),
            retries: 5,
            start_period: "1m".into(),
        })
    );
    assert_eq!(s.stop_signal.as_deref(), Some("SIGINT"));
    assert_eq!(s.stop_grace_period.as_deref(), Some("1m30s"));
    assert_eq!(s.labels["com.example.team"], "shop");
    assert_eq!(s.mode, ServiceMode::Replicated);
    assert_eq!(s.replicas, 3);
    assert_eq!(s.endpoint_mode, EndpointMode::Dnsrr);
    let limits = s.resources.limits.as_ref().unwrap();
    assert_eq!(limits.cpu, Some("1.5".into()));
    assert_eq!(limits.memory, Some("512M".into()));
    assert_eq!(limits.pids, Some(200));
    let res = s.resources.reservations.as_ref().unwrap();
    assert_eq!(res.cpu, Some("0.25".into()));
    assert_eq!(res.memory, Some("128M".into()));
    assert_eq!(
        s.restart,
        RestartPolicy {
            condition: RestartCondition::OnFailure,
            max_attempts: 3,
            delay: "5s".into(),
            window: "2m".into(),
        }
    );
    assert_eq!(s.update.parallelism, 2);
    assert_eq!(s.update.delay, "10s");
    assert_eq!(s.update.failure_action, FailureAction::Rollback);
    assert_eq!(s.update.monitor, "30s");
    assert_eq!(s.update.max_failure_ratio, Some("0.25".into()));
    assert_eq!(s.update.order, UpdateOrder::StartFirst);
    assert_eq!(
        s.placement.constraints,
        ["node.labels.zone==eu-1", "node.hostname!=n3"]
    );
    assert_eq!(s.placement.max_per_node, 2);
    assert_eq!(s.placement.spread.as_deref(), Some("node.labels.rack"));
    assert_eq!(l.volumes, ["shop_data"]);
    // The bind mount is the only thing warned about.
    assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
    assert_contains(&l.warnings[0], "/etc/ssl/certs must exist on every node");
    assert!(
        s.validate().iter().all(|e| e.field == "name"),
        "{:?}",
        s.validate()
    );
}

#[test]
fn a_minimal_service_keeps_hoists_defaults() {
    let l = Project::new("services:\n  web:\n    image: nginx\n").ok();
    assert_eq!(l.services, [ServiceSpec::new("shop_web", "nginx")]);
    assert!(l.warnings.is_empty() && l.volumes.is_empty());
}

#[test]
fn command_and_entrypoint_forms() {
    let s = one("command: [\"sh\", \"-c\", \"echo $$HOME\"]\nentrypoint: /entry.sh --flag\n").ok();
    let s = svc(&s, "web");
    assert_eq!(s.args, ["sh", "-c", "echo $HOME"]);
    assert_eq!(s.command, ["/entry.sh", "--flag"]);
    let e = one("command: 'echo \"unclosed'\n").err();
    assert_contains(&e, "service web: command: ");
    assert_contains(&e, "unclosed quote");
}

#[test]
fn environment_list_form_and_names_from_the_environment() {
    let l = one("environment:\n  - A=1\n  - B=x=y\n  - FROM_ENV\n  - NOT_SET\n  - EMPTY=\n")
        .env("FROM_ENV", "here")
        .ok();
    let env = &svc(&l, "web").env;
    assert_eq!(env["A"], "1");
    assert_eq!(env["B"], "x=y");
    assert_eq!(env["FROM_ENV"], "here");
    assert_eq!(env["EMPTY"], "");
    assert!(!env.contains_key("NOT_SET"));
    let l = one("environment:\n  FROM_ENV:\n  NOT_SET:\n")
        .env("FROM_ENV", "v")
        .ok();
    let env = &svc(&l, "web").env;
    assert_eq!(env.len(), 1);
    assert_eq!(env["FROM_ENV"], "v");
}

#[test]
fn env_files_in_order_then_environment() {
    let l = one("env_file:\n  - common.env\n  - path: ./missing.env\n    required: false\n  - ./web.env\nenvironment:\n  C: from-environment\n")
        .other("common.env", "# shared\nA=common\nB=common\nexport C=common\n")
        .other("web.env", "W=web\nB=\"$W ${A:-unseen}\"\nQ='$literal'\n")
        .ok();
    let env = &svc(&l, "web").env;
    assert_eq!(env["A"], "common");
    assert_eq!(
        env["B"], "web unseen",
        "a file sees its own lines, not another file's"
    );
    assert_eq!(env["C"], "from-environment");
    assert_eq!(env["Q"], "$literal");
    let e = one("env_file: nope.env\n").err();
    assert_contains(
        &e,
        "compose.yaml: service web: env_file[0]: reading /p/nope.env",
    );
}

#[test]
fn ports_ranges_and_refusals() {
    let l = one("ports:\n  - \"8000-8002:9000-9002\"\n  - 0.0.0.0:81:80\n  - \"[::]:82:80/udp\"\n")
        .ok();
    let ports: Vec<(i64, Option<i64>)> = svc(&l, "web")
        .ports
        .iter()
        .map(|p| (p.target, p.published))
        .collect();
    assert_eq!(
        ports,
        [
            (9000, Some(8000)),
            (9001, Some(8001)),
            (9002, Some(8002)),
            (80, Some(81)),
            (80, Some(82))
        ]
    );
    for (ports, msg) in [
        (
            "- 127.0.0.1:8080:80",
            "cannot publish on one address (127.0.0.1)",
        ),
        ("- 8080:80/sctp", "protocol \"sctp\""),
        ("- 8000-8001:80", "must have the same length"),
        ("- 1-2000:1-2000", "more than 1000 ports"),
        ("- 70000:80", "\"70000\" is not a port"),
        (
            "- target: 80\n    host_ip: 10.0.0.1",
            "host_ip: Hoist cannot publish",
        ),
        ("- published: 80", "needs a target"),
        (
            "- target: 80\n    mode: vip",
            "\"vip\" is not ingress or host",
        ),
        ("- [80]", "expected a string or a mapping, found a list"),
    ] {
        let e = one(&format!("ports:\n  {ports}\n")).err();
        assert_contains(&e, "compose.yaml: service web: ports[0]: ");
        assert_contains(&e, msg);
    }
}

#[test]
fn volumes_short_and_long_and_refusals() {
    let l = Project::new(
        "services:\n  web:\n    image: x\n    volumes:\n      - ./site:/usr/share/nginx/html:ro\n      - ~/cache:/cache\n      - type: bind\n        source: ../shared\n        target: /shared\n      - type: volume\n        source: named\n        target: /n\n        read_only: true\nvolumes:\n  named:\n    name: exact-name\n",
    )
    .env("HOME", "/home/op")
    .ok();
    let m = &svc(&l, "web").mounts;
    assert_eq!(m[0].source.as_deref(), Some("/p/site"));
    assert!(m[0].read_only);
    assert_eq!(m[1].source.as_deref(), Some("/home/op/cache"));
    assert_eq!(m[2].source.as_deref(), Some("/shared"));
    assert_eq!(
        (m[3].kind, m[3].source.as_deref(), m[3].read_only),
        (MountType::Volume, Some("exact-name"), true)
    );
    assert_eq!(l.volumes, ["exact-name"]);
    for (vol, msg) in [
        ("- /anon", "no anonymous volumes"),
        (
            "- undeclared:/x",
            "the volume \"undeclared\" is not declared under the top-level volumes",
        ),
        ("- data:/x:nocopy", "cannot honour nocopy"),
        ("- data:/x:rx", "unknown option \"rx\""),
        (
            "- type: npipe\n    source: a\n    target: /b",
            "cannot honour \"npipe\" mounts",
        ),
        ("- type: volume\n    target: /b", "no anonymous volumes"),
        (
            "- type: bind\n    source: /a\n    target: /b\n    bind:\n      propagation: shared",
            "bind.propagation: Hoist cannot honour it",
        ),
        (
            "- type: volume\n    source: data\n    target: /b\n    volume:\n      subpath: x",
            "volume.subpath",
        ),
        (
            "- type: tmpfs\n    target: /t\n    tmpfs:\n      mode: 999",
            "not an octal mode",
        ),
    ] {
        let e = one(&format!("volumes:\n  {vol}\n")).err();
        assert_contains(&e, "compose.yaml: service web: volumes[0]: ");
        assert_contains(&e, msg);
    }
    let e = one("tmpfs: /run:uid=1000\n").err();
    assert_contains(
        &e,
        "service web: tmpfs[0]: Hoist cannot honour the tmpfs option \"uid\"",
    );
}

#[test]
fn external_and_prefixed_volumes() {
    let l = Project::new("services:\n  db:\n    image: postgres\n    volumes: [\"pg:/var/lib/postgresql/data\", \"old:/old\"]\nvolumes:\n  pg: {}\n  old:\n    external: true\n  unused:\n    driver: local\n")
        .ok();
    assert_eq!(l.volumes, ["shop_pg", "shop_unused"]);
    let m = &svc(&l, "db").mounts;
    assert_eq!(m[1].source.as_deref(), Some("old"));
    let e = Project::new("services:\n  a:\n    image: x\nvolumes:\n  v:\n    driver: nfs\n  w:\n    driver_opts: {type: nfs}\n").err();
    assert_contains(
        &e,
        "compose.yaml: volumes.v: driver: Hoist cannot honour the nfs driver",
    );
    assert_contains(&e, "compose.yaml: volumes.w: driver_opts");
}

#[test]
fn healthcheck_forms() {
    let hc = |keys: &str| svc(&one(keys).ok(), "web").health_check.clone();
    let h = hc("healthcheck:\n  test: curl -f http://localhost/ || exit 1\n").unwrap();
    assert_eq!(
        h.command,
        ["/bin/sh", "-c", "curl -f http://localhost/ || exit 1"]
    );
    assert_eq!(
        (h.interval.as_str(), h.timeout.as_str(), h.retries),
        ("30s", "30s", 3)
    );
    let h = hc("healthcheck:\n  test: [\"CMD-SHELL\", \"pg_isready -U app\"]\n").unwrap();
    assert_eq!(h.command, ["/bin/sh", "-c", "pg_isready -U app"]);
    for keys in [
        "healthcheck:\n  test: [\"NONE\"]\n",
        "healthcheck:\n  test: [\"CMD\", \"x\"]\n  disable: true\n",
    ] {
        let l = one(keys).ok();
        assert_eq!(svc(&l, "web").health_check, None);
        assert_contains(
            &l.warnings.join("\n"),
            "cannot turn off an image's own HEALTHCHECK",
        );
    }
    let l = one("healthcheck:\n  interval: 5s\n").ok();
    assert_contains(&l.warnings[0], "ignored without test");
    let e = one("healthcheck:\n  test: [\"RUN\", \"x\"]\n  interval: 10\n").err();
    assert_contains(&e, "service web: healthcheck.test: must be [\"CMD\"");
    assert_contains(
        &e,
        "service web: healthcheck.interval: 10 is a duration without a unit",
    );
}

#[test]
fn deploy_details() {
    let l = one("deploy:\n  mode: global\n  labels: [\"a=1\"]\n  update_config:\n    parallelism: 0\n  rollback_config:\n    parallelism: 1\nlabels:\n  a: service-wins\n  b: '2'\n").ok();
    let s = svc(&l, "web");
    assert_eq!(s.mode, ServiceMode::Global);
    assert_eq!(s.labels["a"], "service-wins");
    assert_eq!(s.update.parallelism, 1);
    let w = l.warnings.join("\n");
    assert_contains(
        &w,
        "service web: deploy.labels: Hoist has no service labels",
    );
    assert_contains(&w, "service web: deploy.rollback_config: ignored");
    let l = one("deploy:\n  replicas: 4\n  update_config:\n    parallelism: 0\n").ok();
    assert_eq!(svc(&l, "web").update.parallelism, 4);
    for (deploy, msg) in [
        (
            "mode: replicated-job",
            "deploy.mode: Hoist cannot honour replicated-job",
        ),
        (
            "resources:\n    reservations:\n      devices: []",
            "reservations.devices: Hoist cannot honour it",
        ),
        (
            "placement:\n    constraints: [node.role == manager]",
            "\"node.role\" is not node.id, node.hostname or node.labels.KEY",
        ),
        (
            "placement:\n    preferences: [{spread: node.id}]",
            "node.labels.KEY only",
        ),
        (
            "restart_policy:\n    condition: always",
            "\"always\" is not any, on-failure or none",
        ),
        (
            "update_config:\n    order: random",
            "\"random\" is not stop-first or start-first",
        ),
        ("replicas: many", "\"many\" is not a whole number"),
        ("replica: 2", "deploy.replica: replica: not a deploy key"),
    ] {
        let e = one(&format!("deploy:\n  {deploy}\n")).err();
        assert_contains(&e, "compose.yaml: service web: deploy.");
        assert_contains(&e, msg);
    }
}

#[test]
fn older_resource_keys_fill_in_and_conflicts_are_refused() {
    let l =
        one("cpus: 0.5\nmem_limit: 256m\nmem_reservation: 64m\npids_limit: 100\nscale: 2\n").ok();
    let s = svc(&l, "web");
    assert_eq!(s.replicas, 2);
    let lim = s.resources.limits.as_ref().unwrap();
    assert_eq!(
        (lim.cpu.clone(), lim.memory.clone(), lim.pids),
        (Some("0.5".into()), Some("256m".into()), Some(100))
    );
    assert_eq!(
        s.resources.reservations.as_ref().unwrap().memory,
        Some("64m".into())
    );
    let e = one("mem_limit: 1g\ndeploy:\n  resources:\n    limits:\n      memory: 2g\n").err();
    assert_contains(
        &e,
        "service web: mem_limit: says something else than deploy.resources.limits.memory",
    );
}

#[test]
fn spec_rules_are_checked_with_the_service_and_key() {
    let e =
        one("deploy:\n  resources:\n    limits:\n      memory: 4Mi\nstop_signal: SIGNOPE\n").err();
    assert_contains(&e, "service web: resources.limits.memory: ");
    assert_contains(&e, "(in Hoist's spec)");
    assert_contains(&e, "service web: stop_signal: ");
}

#[test]
fn warned_keys() {
    let l = one("container_name: web1\ndepends_on: [db]\nrestart: always\nplatform: linux/amd64\npull_policy: always\nprofiles: [debug]\nexpose: [\"80\"]\nbuild: .\nlogging:\n  driver: json-file\nnetworks: [default]\nx-note: hi\n").ok();
    let w = l.warnings.join("\n");
    for key in [
        "container_name",
        "depends_on",
        "restart",
        "platform",
        "pull_policy",
        "profiles",
        "expose",
        "build",
        "logging",
        "networks",
    ] {
        assert_contains(&w, &format!("compose.yaml: service web: {key}: "));
    }
    assert_eq!(l.warnings.len(), 10, "{w}");
}

#[test]
fn hardening_keys_convert() {
    let l = one(
        "cap_add: [NET_ADMIN, CAP_SYS_PTRACE]\ncap_drop: [ALL]\nread_only: true\n\
         security_opt: [\"no-new-privileges:false\"]\nuserns_mode: private\n",
    )
    .ok();
    let s = svc(&l, "web");
    assert_eq!(s.cap_add, ["NET_ADMIN", "CAP_SYS_PTRACE"]);
    assert_eq!(s.cap_drop, ["ALL"]);
    assert!(s.read_only && s.userns);
    assert_eq!(s.no_new_privileges, Some(false));
    for (opt, nnp) in [
        ("no-new-privileges", Some(true)),
        ("no-new-privileges=true", Some(true)),
        ("no-new-privileges:true", Some(true)),
    ] {
        let l = one(&format!("security_opt: [\"{opt}\"]\nuserns_mode: host\n")).ok();
        let s = svc(&l, "web");
        assert_eq!((s.no_new_privileges, s.userns), (nnp, false));
    }
    let e = one("cap_add: [NET_ADMN]\n").err();
    assert_contains(
        &e,
        "service web: cap_add[0]: unknown capability \"NET_ADMN\"",
    );
    let e = one("security_opt: [\"apparmor:unconfined\", \"no-new-privileges:maybe\"]\n").err();
    assert_contains(
        &e,
        "service web: security_opt[0]: Hoist cannot honour \"apparmor:unconfined\"",
    );
    assert_contains(
        &e,
        "service web: security_opt[1]: no-new-privileges takes true or false, not \"maybe\"",
    );
    let e = one("userns_mode: \"ns:/proc/1/ns/user\"\n").err();
    assert_contains(
        &e,
        "service web: userns_mode: \"ns:/proc/1/ns/user\": use private",
    );
}

#[test]
fn refused_keys_name_the_key_and_the_service() {
    for key in [
        "privileged: true",
        "devices: [/dev/fuse]",
        "network_mode: host",
        "pid: host",
        "ipc: host",
        "links: [db]",
        "extra_hosts: [\"a:1.2.3.4\"]",
        "dns: 8.8.8.8",
        "sysctls: {net.core.somaxconn: 1024}",
        "shm_size: 1g",
        "volumes_from: [db]",
        "cpu_shares: 512",
        "tty: true",
        "gpus: all",
        "runtime: runsc",
    ] {
        let name = key.split(':').next().unwrap();
        let e = one(key).err();
        assert_contains(&e, &format!("compose.yaml: service web: {name}: "));
    }
    let e = one("privileged: true\n").err();
    assert_contains(
        &e,
        "Hoist cannot honour privileged: replicas run with Hoist's default capabilities",
    );
    let e = one("tty: false\nstdin_open: false\nfrobnicate: 1\n").err();
    assert_eq!(
        e,
        "compose.yaml: service web: frobnicate: not a Compose service key Hoist knows"
            .replace("compose.yaml", "/p/compose.yaml")
    );
}

#[test]
fn networks_secrets_and_configs_are_not_supported_yet() {
    let e = one("networks: [front]\nsecrets: [db_password]\nconfigs: [nginx]\n").err();
    assert_contains(
        &e,
        "service web: networks: Hoist does not support networks yet",
    );
    assert_contains(
        &e,
        "service web: secrets: Hoist does not support secrets yet",
    );
    assert_contains(
        &e,
        "service web: configs: Hoist does not support configs yet",
    );
    let e = Project::new(
        "services:\n  a:\n    image: x\nnetworks:\n  back: {}\nsecrets:\n  s:\n    file: ./s\n",
    )
    .err();
    assert_contains(
        &e,
        "/p/compose.yaml: networks: Hoist does not support networks yet",
    );
    assert_contains(
        &e,
        "/p/compose.yaml: secrets: Hoist does not support secrets yet",
    );
    let l = Project::new("services:\n  a:\n    image: x\n    networks:\n      default:\nnetworks:\n  default:\n    driver: overlay\n").ok();
    assert_eq!(l.warnings.len(), 2, "{:?}", l.warnings);
}

#[test]
fn build_without_image_and_image_missing() {
    let e = Project::new("services:\n  a:\n    build: .\n").err();
    assert_contains(
        &e,
        "service a: build: Hoist does not build images at deploy",
    );
    let e = Project::new("services:\n  a:\n    user: root\n").err();
    assert_contains(&e, "service a: image: a service needs an image");
}

#[test]
fn top_level_keys() {
    let l = Project::new(
        "version: \"3.8\"\nname: other\nx-defaults: &d {}\nservices:\n  a:\n    image: x\n",
    )
    .ok();
    let w = l.warnings.join("\n");
    assert_contains(&w, "/p/compose.yaml: version: obsolete and ignored");
    assert_contains(
        &w,
        "/p/compose.yaml: name: the stack is shop; the file's name \"other\" is ignored",
    );
    let e = Project::new("services:\n  a:\n    image: x\ninclude: [other.yaml]\nextra: 1\n").err();
    assert_contains(&e, "include: Hoist does not support include");
    assert_contains(&e, "/p/compose.yaml: extra: not a top-level Compose key");
}

#[test]
fn names_follow_swarm() {
    let l = Project::new("services:\n  Web.Front_1:\n    image: x\n").ok();
    assert_eq!(l.services[0].name, "shop_Web.Front_1");
    let e = Project::new("services:\n  \"we b\":\n    image: x\n").err();
    assert_contains(&e, "\"we b\" is not a service name");
    let e = load(
        "Shop",
        &[("/p/c.yaml".into(), b"services: {}".to_vec())],
        &BTreeMap::new(),
        Path::new("/p"),
        &Mem::default(),
    )
    .unwrap_err();
    assert_contains(&e.to_string(), "\"Shop\" is not a stack name");
}
