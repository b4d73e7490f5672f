use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use etherparse::PacketBuilder;

use super::*;
use crate::capture::{Captured, Direction, Frame};

const CLIENT: [u8; 4] = [10, 0, 0, 208];
const SERVER: [u8; 4] = [10, 0, 0, 58];
const STARTED: Duration = Duration::from_secs(10);
/// This kernel's defaults, on client-1.
fn sysctls() -> Vec<(String, SynSysctls)> {
    vec![(
        "client-1".into(),
        SynSysctls {
            linear_timeouts: Some(4),
            syn_retries: 6,
        },
    )]
}

fn arp(request: bool) -> Vec<u8> {
    let (sender, target) = if request {
        (CLIENT, SERVER)
    } else {
        (SERVER, CLIENT)
    };
    let mut f = Vec::new();
    f.extend_from_slice(&[0xff; 6]); // destination
    f.extend_from_slice(&[2; 6]); // source
    f.extend_from_slice(&[0x08, 0x06]); // ARP
    f.extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, if request { 1 } else { 2 }]);
    f.extend_from_slice(&[2; 6]);
    f.extend_from_slice(&sender);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target);
    f
}

fn syn() -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2([2; 6], [4; 6])
        .ipv4(CLIENT, SERVER, 64)
        .tcp(40000, 1235, 7, 64240)
        .syn()
        .write(&mut out, b"")
        .unwrap();
    out
}

/// `frames` at milliseconds after the client's start.
fn evidence(frames: Vec<(u64, Vec<u8>)>) -> (Vec<Trace>, Vec<(String, Outcome)>) {
    let frames = frames
        .into_iter()
        .map(|(ms, data)| Frame {
            at: STARTED + Duration::from_millis(ms),
            direction: Direction::Out,
            original_len: data.len(),
            data,
        })
        .collect();
    let trace = Trace::new(&Captured {
        host: "client-1".into(),
        interface: "eth0".into(),
        frames,
        drops: 0,
    });
    let outcome = Outcome {
        program: "tcp-client 10.0.0.58 1235 -t 3.5".into(),
        status: ExitStatus::from_raw(10 << 8),
        started_at: STARTED,
        duration: Duration::from_millis(3500),
        lines: Vec::new(),
        cut: None,
    };
    (vec![trace], vec![("client".into(), outcome)])
}

fn schedule_check(frames: Vec<(u64, Vec<u8>)>) -> Verdict {
    let (traces, outcomes) = evidence(frames);
    let expectation = Expectation::SynSchedule {
        host: "client-1".into(),
        server: SocketAddrV4::new(SERVER.into(), 1235),
        sender: "client-1".into(),
        app_timeout: Some(Duration::from_secs_f64(3.5)),
        tolerance: Tolerance::default(),
        program: Some("client".into()),
    };
    evaluate(
        &[expectation],
        &Evidence {
            traces: &traces,
            outcomes: &outcomes,
            origin: STARTED - Duration::from_millis(500),
            syn_sysctls: &sysctls(),
            attribution: &Default::default(),
        },
    )
}

#[test]
fn a_late_start_says_what_came_before_the_first_syn() {
    let v = schedule_check(vec![
        (1, arp(true)),
        (1010, arp(true)),
        (1011, arp(false)),
        (1012, syn()),
        (2036, syn()),
        (3060, syn()),
    ]);
    assert!(!v.passed());
    let detail = &v.checks.last().unwrap().detail;
    assert!(
        detail.starts_with(
            "late start: expected the first SYN within 0.100 s of client's start, saw it 1.012 s after; \
             before it: ARP who-has 10.0.0.58 at 0.001 s, unanswered; \
             ARP who-has 10.0.0.58 again at 1.010 s, answered; first SYN at"
        ),
        "{detail}"
    );
    assert!(
        !detail.contains("saw none"),
        "the late start is the failure, not a missing last SYN: {detail}"
    );
    assert!(
        detail.contains("first SYN at 1.512 s on the run's clock, 1.012 s after client started"),
        "{detail}"
    );
}

#[test]
fn a_prompt_start_passes_and_says_when() {
    let v = schedule_check(vec![
        (1, arp(true)),
        (2, arp(false)),
        (3, syn()),
        (1027, syn()),
        (2051, syn()),
        (3075, syn()),
    ]);
    assert!(v.passed(), "{v}");
    let detail = &v.checks.last().unwrap().detail;
    assert!(
        detail.starts_with("first SYN at 0.503 s on the run's clock, 0.003 s after client started"),
        "{detail}"
    );
}

#[test]
fn without_a_start_a_missing_syn_is_still_reported() {
    let (traces, outcomes) = evidence(vec![(1012, syn()), (2036, syn()), (3060, syn())]);
    let expectation = Expectation::SynSchedule {
        host: "client-1".into(),
        server: SocketAddrV4::new(SERVER.into(), 1235),
        sender: "client-1".into(),
        app_timeout: Some(Duration::from_secs_f64(3.5)),
        tolerance: Tolerance::default(),
        program: None,
    };
    let v = evaluate(
        &[expectation],
        &Evidence {
            traces: &traces,
            outcomes: &outcomes,
            origin: STARTED,
            syn_sysctls: &sysctls(),
            attribution: &Default::default(),
        },
    );
    assert!(
        v.checks
            .last()
            .unwrap()
            .detail
            .contains("expected SYN #4 at 3.000 s, saw none")
    );
}

#[test]
fn exit_codes_of_other_programs_are_not_classes() {
    let (traces, mut outcomes) = evidence(vec![]);
    outcomes[0].1.program = "curl -sS http://10.0.0.58:1235/".into();
    let ev = Evidence {
        traces: &traces,
        outcomes: &outcomes,
        origin: STARTED,
        syn_sysctls: &sysctls(),
        attribution: &Default::default(),
    };
    assert_eq!(
        outcomes[0].1.class(),
        None,
        "curl's exit code 10 is not a class"
    );
    let v = evaluate(
        &[Expectation::Class {
            program: "client".into(),
            class: ErrorClass::ConnectTimeout,
        }],
        &ev,
    );
    let detail = &v.checks.last().unwrap().detail;
    assert!(!v.passed());
    assert!(
        detail.contains("`curl` is not one of tcplab's apps"),
        "{detail}"
    );
    let (_, apps) = evidence(vec![]);
    assert_eq!(apps[0].1.class(), Some(ErrorClass::ConnectTimeout));
}
