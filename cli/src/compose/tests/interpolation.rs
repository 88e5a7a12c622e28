//! Variables: the syntax, where they come from (`.env`, the environment), and errors.

use super::super::interpolate::Vars;
use super::*;

fn interp(text: &str, vars: &[(&str, &str)]) -> Result<String, String> {
    let vars: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Vars::new(&vars).interpolate(text)
}

#[test]
fn the_syntax() {
    let vars = [("SET", "v"), ("EMPTY", "")];
    for (text, want) in [
        ("plain", "plain"),
        ("$SET and ${SET}", "v and v"),
        ("${UNSET}", ""),
        ("${UNSET:-d} ${EMPTY:-d} ${SET:-d}", "d d v"),
        ("${UNSET-d} ${EMPTY-d} ${SET-d}", "d  v"),
        ("${UNSET:+a} ${EMPTY:+a} ${SET:+a}", "  a"),
        ("${UNSET+a} ${EMPTY+a} ${SET+a}", " a a"),
        ("$$SET $${SET} $$", "$SET ${SET} $"),
        ("${UNSET:-${SET}-x}", "v-x"),
        ("${UNSET:-${ALSO_UNSET:-deep}}", "deep"),
        ("pre${SET}post", "prevpost"),
        ("$SET.txt", "v.txt"),
    ] {
        assert_eq!(interp(text, &vars).unwrap(), want, "{text}");
    }
}

#[test]
fn errors() {
    assert_eq!(
        interp("${DB_PASSWORD:?set DB_PASSWORD in .env}", &[]).unwrap_err(),
        "required variable DB_PASSWORD is missing a value: set DB_PASSWORD in .env"
    );
    assert_eq!(
        interp("${X?}", &[]).unwrap_err(),
        "required variable X is missing a value"
    );
    assert!(interp("${X?}", &[("X", "")]).is_ok());
    assert!(interp("${X:?}", &[("X", "")]).is_err());
    assert!(interp("${UNCLOSED", &[])
        .unwrap_err()
        .contains("without its closing"));
    assert!(interp("cost: 5$", &[])
        .unwrap_err()
        .contains("write $$ for a literal $"));
    assert!(interp("${1X}", &[])
        .unwrap_err()
        .contains("does not start with a variable name"));
    assert!(interp("${X/a/b}", &[])
        .unwrap_err()
        .contains("unknown operator"));
}

#[test]
fn everywhere_in_values_with_the_environment_over_dotenv() {
    let p = Project::new(
        "services:\n  web:\n    image: \"nginx:${TAG:-1.27}\"\n    ports: [\"${PORT}:80\"]\n    environment:\n      GREETING: $GREETING\n      PRICE: \"$$5\"\n    deploy:\n      replicas: ${REPLICAS}\n",
    )
    .other(".env", "PORT=8080\nREPLICAS=2\nGREETING=\"hello from .env\"\n")
    .env("REPLICAS", "5");
    let l = p.ok();
    let s = svc(&l, "web");
    assert_eq!(s.image, "nginx:1.27");
    assert_eq!(s.ports[0].published, Some(8080));
    assert_eq!(s.env["GREETING"], "hello from .env");
    assert_eq!(s.env["PRICE"], "$5");
    assert_eq!(s.replicas, 5, "the environment wins over .env");
}

#[test]
fn a_missing_required_variable_names_it_and_where() {
    let e = Project::new("services:\n  db:\n    image: postgres\n    environment:\n      POSTGRES_PASSWORD: ${DB_PASSWORD:?set it in .env}\n").err();
    assert_eq!(
        e,
        "/p/compose.yaml: services.db.environment.POSTGRES_PASSWORD: required variable DB_PASSWORD is missing a value: set it in .env"
    );
}

#[test]
fn unset_variables_are_empty_with_a_warning() {
    let l = Project::new("services:\n  web:\n    image: nginx\n    environment:\n      A: \"${NOPE}\"\n      B: $NOPE\n").ok();
    assert_eq!(svc(&l, "web").env["A"], "");
    assert_eq!(
        l.warnings,
        ["/p/compose.yaml: the variable NOPE is not set: it is an empty string"]
    );
}

#[test]
fn extension_keys_are_not_interpolated_but_what_uses_them_is() {
    let l = Project::new("x-env: &env\n  HOME_DIR: ${HOME_DIR:-/home}\n  WEIRD: \"$ not a var\"\nservices:\n  web:\n    image: nginx\n    environment:\n      <<: *env\n      WEIRD: ok\n").ok();
    assert_eq!(svc(&l, "web").env["HOME_DIR"], "/home");
}

#[test]
fn dotenv_format() {
    let env: BTreeMap<String, String> = [("FROM_ENV".to_string(), "e".to_string())].into();
    let (pairs, _) = super::super::dotenv::parse(
        "# comment\n\nA=1\nexport B = two words  # comment\nC='single $A'\nD=\"double $A\\n${B}\"\nE=\"multi\nline\"\nFROM_ENV\nF=${FROM_ENV}\nG=x#not-a-comment\n",
        &env,
    )
    .unwrap();
    let m: BTreeMap<_, _> = pairs.into_iter().collect();
    assert_eq!(m["A"], "1");
    assert_eq!(m["B"], "two words");
    assert_eq!(m["C"], "single $A");
    assert_eq!(m["D"], "double 1\ntwo words");
    assert_eq!(m["E"], "multi\nline");
    assert_eq!(m["FROM_ENV"], "e");
    assert_eq!(m["F"], "e");
    assert_eq!(m["G"], "x#not-a-comment");
    let e = super::super::dotenv::parse("A=1\nB=\"open\n", &env).unwrap_err();
    assert_eq!(e.0, 2);
    let e = Project::new("services:\n  a:\n    image: x\n")
        .other(".env", "OK=1\nbad key=2\n")
        .err();
    assert_eq!(e, "/p/.env:2: \"bad key\" is not a variable name");
}
