//! The files under `testdata/`: the stack lab's file and Compose files written the way public
//! examples (awesome-compose) write them. Each loads, or fails with the intended clear error.

use super::*;
use hoist_proto::service::{MountType, RestartCondition, UpdateOrder};

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/compose/testdata")
        .join(name)
}

fn from_disk(stack: &str, files: &[&str], env: &[(&str, &str)]) -> Result<Loaded, ComposeError> {
    let paths: Vec<PathBuf> = files.iter().map(|f| testdata(f)).collect();
    let env = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    load_from_disk(stack, &paths, &env)
}

#[test]
fn the_stack_lab_file() {
    let l = from_disk("lab", &["stack-lab.yaml"], &[("LAB_TAG", "7")]).unwrap();
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let names: Vec<&str> = l.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["lab_web", "lab_api", "lab_db"]);
    assert_eq!(l.volumes, ["lab_db-data"]);
    let [web, api, db] = &l.services[..] else {
        unreachable!()
    };
    assert_eq!(web.image, "127.0.0.1:5000/lab/web:7");
    assert_eq!(web.ports[0].published, Some(18080));
    assert_eq!(web.replicas, 2);
    assert_eq!(web.update.order, UpdateOrder::StartFirst);
    assert_eq!(web.restart.condition, RestartCondition::Any);
    assert!(web.health_check.is_some());
    assert_eq!(api.env["DB_HOST"], "db");
    assert_eq!(api.resources.limits.as_ref().unwrap().pids, Some(100));
    assert_eq!(db.stop_signal.as_deref(), Some("SIGINT"));
    assert_eq!(db.mounts[0].kind, MountType::Volume);
    assert_eq!(db.mounts[0].source.as_deref(), Some("lab_db-data"));
    assert_eq!(db.mounts[1].kind, MountType::Tmpfs);
    assert_eq!(db.placement.max_per_node, 1);
    for s in &l.services {
        let problems: Vec<_> = s
            .validate()
            .into_iter()
            .filter(|e| e.field != "name")
            .collect();
        assert!(problems.is_empty(), "{}: {problems:?}", s.name);
    }
    // Another stack name than the file's is warned about.
    let l = from_disk("lab2", &["stack-lab.yaml"], &[]).unwrap();
    assert_contains(
        &l.warnings.join("\n"),
        "the stack is lab2; the file's name \"lab\" is ignored",
    );
}

#[test]
fn nginx_flask_postgres() {
    let e = from_disk("app", &["nginx-flask-postgres.yaml"], &[])
        .unwrap_err()
        .to_string();
    assert_contains(&e, "services.backend.environment.DATABASE_URL: required variable POSTGRES_PASSWORD is missing a value: set POSTGRES_PASSWORD");
    let l = from_disk(
        "app",
        &["nginx-flask-postgres.yaml"],
        &[("POSTGRES_PASSWORD", "s3cret")],
    )
    .unwrap();
    let backend = svc_of(&l, "app_backend");
    assert_eq!(
        backend.args,
        [
            "gunicorn",
            "--bind",
            "0.0.0.0:8000",
            "--workers",
            "3",
            "app:create_app()"
        ]
    );
    assert_eq!(
        backend.env["DATABASE_URL"],
        "postgresql://app:s3cret@db:5432/app"
    );
    let proxy = svc_of(&l, "app_proxy");
    let conf = testdata("nginx/conf.d");
    assert_eq!(
        proxy.mounts[0].source.as_deref(),
        Some(conf.to_str().unwrap())
    );
    let db = svc_of(&l, "app_db");
    assert_eq!(
        db.health_check.as_ref().unwrap().command,
        ["/bin/sh", "-c", "pg_isready -U app -d app"]
    );
    let w = l.warnings.join("\n");
    for expected in [
        "service proxy: restart: ignored",
        "service proxy: depends_on: ignored",
        "service backend: build: ignored",
        "service backend: expose: ignored",
        "service proxy: volumes[0]: the bind mount's source",
    ] {
        assert_contains(&w, expected);
    }
}

#[test]
fn wordpress_mysql() {
    let l = from_disk("wp", &["wordpress-mysql.yaml"], &[]).unwrap();
    assert_eq!(l.volumes, ["wp_db_data", "wp_wp_data"]);
    let db = svc_of(&l, "wp_db");
    assert_eq!(
        db.args,
        ["--default-authentication-plugin=mysql_native_password"]
    );
    assert_eq!(db.env.len(), 4);
    let wordpress = svc_of(&l, "wp_wordpress");
    assert_eq!(wordpress.ports[0].published, Some(80));
    assert_eq!(wordpress.mounts[0].source.as_deref(), Some("wp_wp_data"));
}

#[test]
fn redis_worker_with_a_production_override() {
    let l = from_disk(
        "q",
        &["redis-worker.yaml", "redis-worker.prod.yaml"],
        &[("TAG", "2.0")],
    )
    .unwrap();
    let worker = svc_of(&l, "q_worker");
    assert_eq!(worker.image, "example/queue-app:2.0");
    assert_eq!(worker.replicas, 6);
    assert_eq!(worker.env["LOG_LEVEL"], "warning");
    assert_eq!(worker.env["REDIS_URL"], "redis://redis:6379/0");
    assert_eq!(worker.restart.max_attempts, 5);
    assert_eq!(worker.placement.constraints, ["node.labels.role==worker"]);
    let web = svc_of(&l, "q_web");
    assert_eq!(web.args, ["web", "--listen", ":5000"]);
    assert_eq!(web.replicas, 1);
    assert_eq!(web.ports[0].published, Some(5000));
    let redis = svc_of(&l, "q_redis");
    assert_eq!(
        redis.args,
        ["redis-server", "--appendonly", "yes", "--save", "60", "1"]
    );
    assert_eq!(redis.ulimits["nofile"].hard, 20000);
    assert_eq!(redis.placement.constraints, ["node.hostname==n1"]);
    assert_eq!(l.warnings.len(), 1, "{:?}", l.warnings);
    assert_contains(&l.warnings[0], "version: obsolete and ignored");
}

#[test]
fn nginx_flask_mysql_with_secrets_and_networks_is_refused_clearly() {
    let e = from_disk("app", &["nginx-flask-mysql-secrets.yaml"], &[]).unwrap_err();
    let text = e.to_string();
    assert_contains(
        &text,
        "nginx-flask-mysql-secrets.yaml: secrets: Hoist does not support secrets yet",
    );
    assert_contains(
        &text,
        "nginx-flask-mysql-secrets.yaml: networks: Hoist does not support networks yet",
    );
    assert_contains(&text, "nginx-flask-mysql-secrets.yaml: service backend: secrets: Hoist does not support secrets yet");
    assert_contains(
        &text,
        "service backend: networks: Hoist does not support networks yet",
    );
    assert_contains(&text, "(remove backnet, frontnet)");
    assert_contains(&text, "service proxy: networks:");
}

fn svc_of<'a>(l: &'a Loaded, name: &str) -> &'a hoist_proto::service::ServiceSpec {
    l.services
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no {name}"))
}

#[test]
fn stack_config_prints_a_spec_file_service_apply_reads() {
    let l = from_disk("q", &["redis-worker.yaml", "redis-worker.prod.yaml"], &[]).unwrap();
    let yaml = command::render(&l, crate::output::Format::Table).unwrap();
    assert!(
        yaml.starts_with("# volumes: q_redis-data\nservices:\n- name: q_redis\n"),
        "{yaml}"
    );
    let back = crate::spec_file::parse(&yaml, crate::spec_file::Format::Yaml).unwrap();
    assert_eq!(back, l.services);
    let json = command::render(&l, crate::output::Format::Json).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["volumes"][0], "q_redis-data");
    assert_eq!(v["services"].as_array().unwrap().len(), 3);
}
