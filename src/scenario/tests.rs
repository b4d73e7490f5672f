use std::path::Path;

use super::*;

fn fixtures() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/scenarios"))
}

fn error_of(text: &str) -> String {
    Scenario::from_toml(text, "s.toml", Some(fixtures()), "s")
        .unwrap_err()
        .to_string()
}

const HEAD: &str = "description = \"d\"\ntopology = \"../topologies/article.toml\"\n";

#[test]
fn every_catalog_file_loads() {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let path = entry.unwrap().path();
        let s = Scenario::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(!s.description.is_empty());
        assert!(!s.expectations.is_empty(), "{} checks nothing", s.name);
        assert!(s.time_limit <= Duration::from_secs(60));
        names.push(s.name);
    }
    assert!(names.len() >= 15, "{names:?}");
}

#[test]
fn typo_in_a_key() {
    let e = error_of(&format!("{HEAD}time_limt = 5\n"));
    assert!(e.starts_with("s.toml:3:1: "), "{e}");
    assert!(e.contains("unknown field `time_limt`"), "{e}");
}

#[test]
fn typo_in_a_step_key() {
    let e = error_of(&format!(
        "{HEAD}[[step]]\naction = \"run\"\nhost = \"client-1\"\nname = \"c\"\ncomand = [\"x\"]\n"
    ));
    assert!(e.contains("comand"), "{e}");
    let e = error_of(&format!("{HEAD}[[step]]\naction = \"jump\"\n"));
    assert!(e.contains("unknown variant `jump`"), "{e}");
}

#[test]
fn a_mistake_in_a_later_step_or_expectation_points_at_it() {
    let steps = "[[step]]\naction = \"run\"\nhost = \"client-1\"\nname = \"c\"\ncommand = [\"true\"]\n\n\
                 [[step]]\naction = \"impair\"\nhost = \"server\"\n";
    // Lines: 3-7 the first step, 9 the second's header, 12 its mistake.
    let e = error_of(&format!("{HEAD}{steps}egress = {{ dealy = 0.1 }}\n"));
    assert!(
        e.starts_with("s.toml:12:12: step[1]: unknown field `dealy`"),
        "{e}"
    );
    let e = error_of(&format!("{HEAD}{steps}egress = {{ delay = \"100ms\" }}\n"));
    assert!(
        e.starts_with("s.toml:9:1: step[1]: invalid type: string"),
        "{e}"
    );
    let e = error_of(&format!(
        "{HEAD}{steps}\n[[expect]]\nkind = \"class\"\nprogram = \"c\"\nclass = \"ok\"\n\n\
         [[expect]]\nkind = \"class\"\nprogram = \"c\"\nclas = \"ok\"\n"
    ));
    assert!(
        e.starts_with("s.toml:21:1: expect[1]: unknown field `clas`"),
        "{e}"
    );
}

#[test]
fn host_that_does_not_exist() {
    let e = error_of(&format!(
        "{HEAD}[[step]]\naction = \"run\"\nhost = \"client-9\"\nname = \"c\"\ncommand = [\"true\"]\n"
    ));
    assert!(e.starts_with("s.toml:5:8: "), "{e}");
    assert!(
        e.contains("no host named `client-9` (hosts: server, client-1, client-2, client-3)"),
        "{e}"
    );
}

#[test]
fn overlapping_address_points_at_the_scenario_line() {
    let e = error_of(&format!(
        "{HEAD}\n[[host]]\nname = \"intruder\"\naddress = \"10.0.0.58\"\n"
    ));
    assert!(e.starts_with("s.toml:6:11: "), "{e}");
    assert!(e.contains("10.0.0.58 is already `server`'s address"), "{e}");
}

#[test]
fn bad_port() {
    let e = error_of(&format!(
        "{HEAD}[[step]]\naction = \"run\"\nhost = \"client-1\"\nname = \"c\"\ncommand = [\"true\"]\n[[expect]]\nkind = \"handshake\"\nhost = \"client-1\"\nserver = \"server:99999\"\n"
    ));
    assert!(e.contains("`99999` is not a port"), "{e}");
    let e = error_of(&format!(
        "{HEAD}[[firewall]]\non = \"fabric\"\naction = \"drop\"\nprotocol = \"tcp\"\nport = 0\n"
    ));
    assert!(e.starts_with("s.toml:7:"), "{e}");
}

#[test]
fn expectations_name_programs_that_ran() {
    let e = error_of(&format!(
        "{HEAD}[[expect]]\nkind = \"class\"\nprogram = \"ghost\"\nclass = \"ok\"\n"
    ));
    assert!(e.contains("no step runs a program named `ghost`"), "{e}");
    let e = error_of(&format!(
        "{HEAD}[[step]]\naction = \"run\"\nhost = \"client-1\"\nname = \"c\"\ncommand = [\"true\"]\n[[expect]]\nkind = \"class\"\nprogram = \"c\"\nclass = \"timeout\"\n"
    ));
    assert!(e.contains("unknown error class `timeout`"), "{e}");
}

#[test]
fn steps_refer_to_started_programs() {
    let e = error_of(&format!(
        "{HEAD}[[step]]\naction = \"stop\"\nname = \"server\"\n"
    ));
    assert!(
        e.contains("no program named `server` was started before this step"),
        "{e}"
    );
}

fn steps(actions: &[(&str, &str)]) -> String {
    let mut text = format!(
        "{HEAD}[[step]]\naction = \"start\"\nhost = \"server\"\nname = \"s\"\ncommand = [\"sleep\", \"9\"]\n"
    );
    for (action, extra) in actions {
        text.push_str(&format!(
            "[[step]]\naction = \"{action}\"\nname = \"s\"\n{extra}"
        ));
    }
    text
}

#[test]
fn steps_in_a_workable_order_are_accepted() {
    for actions in [
        &[("wait-for", "line = \"x\"\n"), ("stop", "")][..],
        &[
            ("wait-for", "line = \"x\"\n"),
            ("wait-for", "line = \"y\"\n"),
            ("kill", ""),
        ],
        &[("wait", "")],
        &[],
    ] {
        let text = steps(actions);
        if let Err(e) = Scenario::from_toml(&text, "s.toml", Some(fixtures()), "s") {
            panic!("{actions:?}: {e}");
        }
    }
}

#[test]
fn steps_on_an_ended_program_are_refused_with_their_place() {
    for (ended, then) in [
        ("stop", "wait-for"),
        ("kill", "wait"),
        ("wait", "stop"),
        ("stop", "kill"),
    ] {
        let extra = |a: &str| {
            if a == "wait-for" {
                "line = \"x\"\n"
            } else {
                ""
            }
        };
        let e = error_of(&steps(&[(ended, extra(ended)), (then, extra(then))]));
        // The third step's `name`, on line 3 + 5 + 3 + 2.
        assert!(e.starts_with("s.toml:13:8: step[2].name: cannot "), "{e}");
        assert!(e.contains("it already ended at step[1]"), "{e}");
    }
}

#[test]
fn a_program_started_twice_by_name_is_refused() {
    let text = format!(
        "{}[[step]]\naction = \"start\"\nhost = \"server\"\nname = \"s\"\ncommand = [\"true\"]\n",
        steps(&[("stop", "")])
    );
    let e = error_of(&text);
    assert!(e.contains("a program named `s` already ran"), "{e}");
}

#[test]
fn only_namespaced_sysctls() {
    let e = error_of(&format!("{HEAD}[sysctls.server]\n\"kernel.panic\" = 1\n"));
    assert!(e.contains("only net.* sysctls"), "{e}");
}

#[test]
fn inline_topology_without_a_file() {
    let s = Scenario::from_toml(
        "description = \"d\"\n[[host]]\nname = \"a\"\n[[host]]\nname = \"b\"\n",
        "s.toml",
        None,
        "s",
    )
    .unwrap();
    assert_eq!(s.resolved.hosts.len(), 2);
}

#[test]
fn missing_topology_file() {
    let e = error_of("description = \"d\"\ntopology = \"nope.toml\"\n");
    assert!(e.contains("cannot read") && e.contains("nope.toml"), "{e}");
}

#[test]
fn the_readme_lists_every_catalog_scenario() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        assert!(
            readme.contains(&format!("| `{name}` |")),
            "README.md's catalog table lacks `{name}`"
        );
    }
}

#[test]
fn each_expectation_knows_the_line_of_its_expect() {
    let text = format!(
        "{HEAD}[[step]]\naction = \"run\"\nhost = \"client-1\"\nname = \"client\"\ncommand = [\"true\"]\n\n\
         [[expect]]\nkind = \"exit\"\nprogram = \"client\"\ncode = 0\n\n\
         # a comment between\n\n[[expect]]\nkind = \"no-flow\"\nhost = \"server\"\nserver = \"server:1235\"\n\
         [[expect]]\nkind = \"no-ip-packets\"\nhost = \"client-2\"\n"
    );
    let s = Scenario::from_toml(&text, "dir/s.toml", Some(fixtures()), "s").unwrap();
    let lines: Vec<String> = s.expectations_at.iter().map(|a| a.to_string()).collect();
    assert_eq!(lines, ["dir/s.toml:9", "dir/s.toml:16", "dir/s.toml:20"]);
    for at in &s.expectations_at {
        assert_eq!(
            text.lines().nth(at.line as usize - 1),
            Some("[[expect]]"),
            "{at}"
        );
    }
    // Checked with no evidence, each fails on its own line.
    let v = crate::expect::evaluate_after(
        Vec::new(),
        &s.expectations,
        &s.expectations_at
            .iter()
            .cloned()
            .map(Some)
            .collect::<Vec<_>>(),
        &crate::expect::Evidence {
            traces: &[],
            outcomes: &[],
            origin: Duration::ZERO,
            syn_sysctls: &[],
            attribution: &Default::default(),
        },
    );
    let report = v.to_string();
    for wanted in [
        "dir/s.toml:9: FAIL client exited with 0: expected a program named client, saw none",
        "dir/s.toml:16: FAIL server: no packet of a connection to 10.0.0.58:1235: expected a capture of server, saw none",
        "dir/s.toml:20: FAIL client-2: no IP packet at all: expected a capture of client-2",
    ] {
        assert!(report.contains(wanted), "{wanted} in:\n{report}");
    }
}

#[test]
fn catalog_expectations_point_at_their_expect_lines() {
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let path = entry.unwrap().path();
        let s = Scenario::from_file(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let headers: Vec<u32> = text
            .lines()
            .enumerate()
            .filter(|(_, l)| l.trim() == "[[expect]]")
            .map(|(i, _)| i as u32 + 1)
            .collect();
        let lines: Vec<u32> = s.expectations_at.iter().map(|a| a.line).collect();
        assert_eq!(lines, headers, "{}", path.display());
        assert!(
            s.expectations_at
                .iter()
                .all(|a| a.file == path.display().to_string()),
            "the file as given: {:?}",
            s.expectations_at
        );
    }
}

#[test]
fn hops_need_two_captures_and_a_small_count() {
    let one = format!(
        "{HEAD}[[expect]]\nkind = \"hops\"\nserver = \"server:1234\"\nhosts = [\"client-1\"]\nhops = 1\n"
    );
    let e = error_of(&one);
    assert!(
        e.contains("s.toml:") && e.contains("give two captures"),
        "{e}"
    );
    let many = format!(
        "{HEAD}[[expect]]\nkind = \"hops\"\nserver = \"server:1234\"\nhosts = [\"client-1\", \"server\"]\nhops = 300\n"
    );
    let e = error_of(&many);
    assert!(e.contains("300 is not a number of routers"), "{e}");
}

#[test]
fn dropped_by_names_are_checked_against_the_topology() {
    let text = |by: &str| {
        format!(
            "{HEAD}[[expect]]\nkind = \"dropped-by\"\nserver = \"server:1234\"\nby = \"{by}\"\n"
        )
    };
    for (by, want) in [
        ("security-group:nope", "no security group named `nope`"),
        ("firewall:3", "at most 0 firewall rule(s)"),
        ("firewall:nope", "no host named `nope`"),
        ("network-acl:x", "no network ACL named `x`"),
        ("route-table:x", "no route table or subnet named `x`"),
        ("sg:x", "should be `security-group:NAME`"),
    ] {
        let e = error_of(&text(by));
        assert!(e.contains(want), "{by}: {e}");
        assert!(e.starts_with("s.toml:"), "{e}");
    }
}

#[test]
fn an_impair_step_is_checked_with_its_place() {
    let step =
        |keys: &str| format!("{HEAD}[[step]]\naction = \"impair\"\nhost = \"server\"\n{keys}\n");
    assert!(Scenario::from_toml(&step("delay = 0.1"), "s.toml", Some(fixtures()), "s").is_ok());
    assert!(
        Scenario::from_toml(&step(""), "s.toml", Some(fixtures()), "s").is_ok(),
        "no settings: removes them"
    );
    let e = error_of(&step("loss = 120"));
    assert!(
        e.starts_with("s.toml:6:8: step[0].loss: 120 is not a percentage"),
        "{e}"
    );
    let e = error_of(&step("ingress = { delay = 75 }"));
    assert!(
        e.starts_with("s.toml:6:21: step[0].ingress.delay: 75 is not a delay"),
        "{e}"
    );
    let e = error_of(&format!(
        "{HEAD}[[step]]\naction = \"impair\"\nhost = \"nobody\"\n"
    ));
    assert!(
        e.starts_with("s.toml:5:8: step[0].host: no host named `nobody`"),
        "{e}"
    );
}

#[test]
fn link_expectations_are_checked_with_their_place() {
    let text = |keys: &str| format!("{HEAD}[[expect]]\n{keys}\n");
    let ok = text(
        "kind = \"handshake-rtt\"\nhost = \"client-1\"\nserver = \"server:1234\"\nrtt = 0.2\nsyns = 2",
    );
    let s = Scenario::from_toml(&ok, "s.toml", Some(fixtures()), "s").unwrap();
    assert!(matches!(
        &s.expectations[0],
        Expectation::HandshakeRtt { syns: Some(2), .. }
    ));
    let e = error_of(&text(
        "kind = \"handshake-rtt\"\nhost = \"client-1\"\nserver = \"server:1234\"\nrtt = -1",
    ));
    assert!(e.starts_with("s.toml:7:7: expect[0].rtt: -1 is not"), "{e}");
    let e = error_of(&text(
        "kind = \"handshake-rtt\"\nhost = \"client-1\"\nserver = \"server:1234\"\nrtt = 1\nsyns = 0",
    ));
    assert!(
        e.starts_with("s.toml:8:8: expect[0].syns: 0 is not a number of SYNs"),
        "{e}"
    );
    let e = error_of(&text(
        "kind = \"retransmissions\"\nhost = \"client-1\"\nserver = \"server:1234\"\nfrom = \"both\"",
    ));
    assert!(e.starts_with("s.toml:"), "{e}");
    assert!(e.contains("unknown variant `both`"), "{e}");
    let e = error_of(&text(
        "kind = \"dropped-by\"\nserver = \"server:1234\"\nby = \"impairment:nobody\"",
    ));
    assert!(e.contains("no host named `nobody`"), "{e}");
}

#[test]
fn udp_expectations_are_checked_with_their_place() {
    let text = |keys: &str| format!("{HEAD}[[expect]]\n{keys}\n");
    let ok = text(
        "kind = \"datagrams\"\nhost = \"server\"\nserver = \"server:1234\"\nfrom = \"server\"\ncount = 2\ntext = \"Response\"",
    );
    let s = Scenario::from_toml(&ok, "s.toml", Some(fixtures()), "s").unwrap();
    assert_eq!(
        s.expectations[0],
        Expectation::Datagrams {
            host: "server".into(),
            server: "10.0.0.58:1234".parse().unwrap(),
            from: crate::trace::Side::Server,
            count: Some(2),
            text: Some("Response".into()),
        }
    );
    let plain = text("kind = \"datagrams\"\nhost = \"server\"\nserver = \"10.0.0.58:1234\"");
    let s = Scenario::from_toml(&plain, "s.toml", Some(fixtures()), "s").unwrap();
    assert!(matches!(
        &s.expectations[0],
        Expectation::Datagrams {
            from: crate::trace::Side::Client,
            count: None,
            text: None,
            ..
        }
    ));
    let none = text(
        "kind = \"datagrams\"\nhost = \"server\"\nserver = \"server:1234\"\nfrom = \"server\"\ncount = 0",
    );
    let s = Scenario::from_toml(&none, "s.toml", Some(fixtures()), "s").unwrap();
    assert!(matches!(
        &s.expectations[0],
        Expectation::Datagrams { count: Some(0), .. }
    ));
    for (count, line) in [("-3", "-3 is not"), ("100001", "100001 is not")] {
        let e = error_of(&text(&format!(
            "kind = \"datagrams\"\nhost = \"server\"\nserver = \"server:1234\"\ncount = {count}"
        )));
        assert!(
            e.starts_with(&format!(
                "s.toml:7:9: expect[0].count: {line} a number of datagrams: give 0 to 100000"
            )),
            "{e}"
        );
        assert_eq!(e.lines().count(), 1, "{e}");
    }
    let e = error_of(&text(
        "kind = \"datagrams\"\nhost = \"server\"\nserver = \"server:99999\"",
    ));
    assert!(
        e.starts_with("s.toml:6:10: expect[0].server: `99999` is not a port"),
        "{e}"
    );
    let e = error_of(&text(
        "kind = \"no-datagrams\"\nhost = \"server\"\nserver = \"nobody:1234\"",
    ));
    assert!(
        e.starts_with("s.toml:6:10: expect[0].server: `nobody` is neither a host nor an address"),
        "{e}"
    );
    let e = error_of(&text(
        "kind = \"no-datagrams\"\nhost = \"server\"\nserver = \"server\"",
    ));
    assert!(
        e.starts_with("s.toml:6:10: expect[0].server: `server` should be HOST:PORT"),
        "{e}"
    );
    let e = error_of(&text(
        "kind = \"datagrams\"\nhost = \"server\"\nserver = \"server:1234\"\nfrom = \"both\"",
    ));
    assert!(e.starts_with("s.toml:"), "{e}");
    assert!(e.contains("unknown variant `both`"), "{e}");
}
