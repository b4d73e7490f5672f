//! Ready means ready: many labs built at once on a busy machine, and every host's FIRST frame,
//! sent the moment its lab is handed over, reaches every other host. Needs root.
//!
//! The frame is a UDP broadcast: no ARP before it and nothing retries it, so a frame lost
//! between the bridge ports shows as a missing datagram, never as a late one.

mod common;

use std::net::{Ipv4Addr, UdpSocket};
use std::sync::{Arc, Barrier};

use common::privileged;
use tcplab::capture::Direction;
use tcplab::lab::Lab;
use tcplab::spec::{HostSpec, Topology};
use tcplab::trace::{Kind, Udp};

/// Labs built at the same moment: enough to keep RTNL and the link-state work of the kernel
/// busy on a 2-core machine.
const LABS: usize = 24;
const HOSTS: usize = 3;
/// Rounds of those: without the wait, one round of 24 labs lost frames about half the time
/// on a 2-core machine; three rounds make a regression all but certain to show.
const ROUNDS: usize = 3;
const PORT: u16 = 9;

fn topology() -> Topology {
    (1..=HOSTS).fold(Topology::new("10.0.0.0/24".parse().unwrap()), |t, i| {
        t.host(HostSpec::new(format!("h{i}")))
    })
}

/// Builds a lab, captures every host, and has each host send one broadcast datagram at once.
/// Returns, per receiving host, the senders whose datagram it saw.
fn first_frames(barrier: &Barrier) -> Vec<(String, Vec<Ipv4Addr>)> {
    barrier.wait();
    let lab = Lab::build(&topology()).unwrap_or_else(|e| panic!("cannot build the lab: {e}"));
    let recording = lab.start_captures().unwrap();
    for host in lab.hosts() {
        let name = host.name().to_string();
        host.ns()
            .run(move |_| {
                let socket = UdpSocket::bind("0.0.0.0:0")?;
                socket.set_broadcast(true)?;
                socket.send_to(name.as_bytes(), (Ipv4Addr::new(10, 0, 0, 255), PORT))
            })
            .unwrap()
            .unwrap();
    }
    let traces = recording.stop(None).unwrap();
    traces
        .iter()
        .map(|t| {
            let senders = t
                .packets
                .iter()
                .filter(|p| p.direction == Direction::In)
                .filter_map(|p| match &p.kind {
                    Kind::Udp(Udp { src, dst, .. }) if dst.port() == PORT => Some(*src.ip()),
                    _ => None,
                })
                .collect();
            (t.host.clone(), senders)
        })
        .collect()
}

#[test]
fn first_frame_after_build_is_delivered_under_parallel_builds() {
    if !privileged() {
        return;
    }
    let mut lost = Vec::new();
    for round in 0..ROUNDS {
        let barrier = Arc::new(Barrier::new(LABS));
        let labs: Vec<_> = (0..LABS)
            .map(|_| {
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || first_frames(&barrier))
            })
            .collect();
        for (i, lab) in labs.into_iter().enumerate() {
            for (host, senders) in lab.join().expect("a lab's thread panicked") {
                let peers = HOSTS - 1;
                if senders.len() != peers {
                    lost.push(format!(
                        "round {round}, lab {i}: {host} received {} of {peers} first datagrams (from {senders:?})",
                        senders.len()
                    ));
                }
            }
        }
    }
    assert!(
        lost.is_empty(),
        "first frames lost right after the build:\n{}",
        lost.join("\n")
    );
}
